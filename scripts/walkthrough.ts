/**
 * `npm run walkthrough`: `quantbook report notebooks --execute --out report` — every shipped
 * notebook run top to bottom on a fresh quantbook kernel (through the Node Jupyter client, no
 * Python), the executed notebooks in report/notebooks/ and the static site in report/.
 * Exits non-zero when a cell fails.
 */
import { readdirSync } from "node:fs";
import * as path from "node:path";
import { report, type NotebookRun } from "../cli/report";

const ROOT = path.join(__dirname, "..", "..");
const NOTEBOOKS = path.join(ROOT, "notebooks");
export const REPORT = path.join(ROOT, "report");
export type { NotebookRun };

export async function walkthrough(
  only?: RegExp,
  log: (s: string) => void = console.log,
  out = REPORT,
): Promise<NotebookRun[]> {
  const files = readdirSync(NOTEBOOKS)
    .filter((f) => /^\d\d_.*\.ipynb$/.test(f) && (!only || only.test(f)))
    .sort()
    .map((f) => path.join(NOTEBOOKS, f));
  const r = await report(files, { execute: true, out, title: "quantbook walkthrough", log });
  return r.runs;
}

if (require.main === module) {
  const t0 = performance.now();
  walkthrough(process.argv[2] ? new RegExp(process.argv[2]) : undefined)
    .then((runs) => {
      console.log(
        `walkthrough: ${runs.filter((r) => r.ok).length}/${runs.length} notebooks ok in ${((performance.now() - t0) / 1000).toFixed(1)} s; report in ${path.relative(process.cwd(), path.join(REPORT, "index.html"))}`,
      );
      if (runs.some((r) => !r.ok)) process.exit(1);
    })
    .catch((e) => {
      console.error(e instanceof Error ? e.stack : e);
      process.exit(1);
    });
}
