#!/usr/bin/env node
/**
 * The `quantbook` command:
 *   quantbook report <notebook.ipynb | folder>... [--execute] [--out DIR] ...   a static HTML site
 *   quantbook install-kernel [--user | --sys-prefix | --prefix DIR]            the Jupyter kernelspec
 */
import { main as kernelMain } from "../kernel/main";
import { REPORT_USAGE, ReportError, reportCommand } from "./report";

const USAGE = `usage: quantbook <command> [arguments]

commands:
  report           render notebooks (optionally executed first) into a static HTML site
  install-kernel   install the Jupyter kernelspec "quantbook" (--user | --sys-prefix | --prefix DIR)

${REPORT_USAGE}`;

export async function run(args: string[]): Promise<number> {
  const [command, ...rest] = args;
  if (command === "report") return reportCommand(rest);
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
      console.error(e instanceof ReportError ? e.message : e instanceof Error ? e.stack : e);
      process.exit(e instanceof ReportError ? 2 : 1);
    },
  );
}
