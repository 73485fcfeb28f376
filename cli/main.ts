#!/usr/bin/env node
/**
 * The `quantbook` command:
 *   quantbook report <notebook.ipynb | folder>... [--execute] [--out DIR] ...   a static HTML site
 *   quantbook install-kernel [--user | --sys-prefix | --prefix DIR]            the Jupyter kernelspec
 *   quantbook check MODEL.onnx --march nash-m --data DIR [--plan P] [--min-cosine C] ...   the CI gate
 */
import { main as kernelMain } from "../kernel/main";
import { REPORT_USAGE, ReportError, reportCommand } from "./report";
import { CHECK_USAGE, CheckUsageError, checkCommand } from "./check";

const USAGE = `usage: quantbook <command> [arguments]

commands:
  report           render notebooks (optionally executed first) into a static HTML site
  install-kernel   install the Jupyter kernelspec "quantbook" (--user | --sys-prefix | --prefix DIR)
  check            the quantization gate: calibrate, apply a plan, check rules, cosine and latency (exit 1 on failure)

${REPORT_USAGE}

${CHECK_USAGE}`;

export async function run(args: string[]): Promise<number> {
  const [command, ...rest] = args;
  if (command === "report") return reportCommand(rest);
  if (command === "check") return checkCommand(rest);
  if (command === "install-kernel") {
    await kernelMain(["install", ...rest]);
    return 0;
  }
  if (command === undefined || command === "--help" || command === "-h" || command === "help") {
    console.log(USAGE);
    return command === undefined ? 2 : 0;
  }
  console.error(`quantbook: unknown command '${command}'\n\n${USAGE}`);
  return 2;
}

if (require.main === module) {
  run(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e) => {
      const usage = e instanceof ReportError || e instanceof CheckUsageError;
      // a quantbook error (a bad file, a bad plan) is a sentence, not a stack
      console.error(
        usage || (e instanceof Error && e.name === "QuantbookError")
          ? (e as Error).message
          : e instanceof Error
            ? e.stack
            : e,
      );
      process.exit(usage ? 2 : 1);
    },
  );
}
