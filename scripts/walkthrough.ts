/**
 * `npm run walkthrough`: runs every notebook top to bottom on a fresh quantbook kernel (through
 * the Node Jupyter client, no Python), writes the executed notebooks to report/notebooks/ and a
 * static HTML report (report/index.html and a page per notebook). Exits non-zero when a cell fails.
 */
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { KernelClient } from "../kernel/client";
import { kernelSpec } from "../kernel/main";
import { escapeHtml } from "../src/display/html";
import { notebookHtml, REPORT_CSS, type Notebook } from "./notebookHtml";

const ROOT = path.join(__dirname, "..", "..");
const NOTEBOOKS = path.join(ROOT, "notebooks");
export const REPORT = path.join(ROOT, "report");

export interface NotebookRun {
  name: string;
  ok: boolean;
  cells: number;
  ms: number;
  firstResultMs: number;
  error?: string | undefined;
}

export async function runNotebook(file: string): Promise<{ nb: Notebook; run: NotebookRun }> {
  const nb = JSON.parse(readFileSync(path.join(NOTEBOOKS, file), "utf8")) as Notebook;
  const start = performance.now();
  const client = await KernelClient.start(kernelSpec().argv as string[], NOTEBOOKS);
  let firstResultMs = 0;
  let error: string | undefined;
  let cells = 0;
  try {
    for (const cell of nb.cells) {
      if (cell.cell_type !== "code") continue;
      const r = await client.execute(Array.isArray(cell.source) ? cell.source.join("") : cell.source);
      if (firstResultMs === 0) firstResultMs = performance.now() - start;
      cell.outputs = r.outputs;
      cell.execution_count = r.executionCount;
      cells++;
      if (r.status === "error") {
        const e = r.outputs.find((o) => o.output_type === "error") as { ename: string; evalue: string } | undefined;
        error = `cell ${cells}: ${e?.ename}: ${e?.evalue}`;
        break;
      }
    }
  } finally {
    await client.shutdown();
  }
  return { nb, run: { name: file.replace(/\.ipynb$/, ""), ok: error === undefined, cells, ms: performance.now() - start, firstResultMs, error } };
}

function indexHtml(runs: NotebookRun[]): string {
  const rows = runs
    .map(
      (r) =>
        `<tr><td><a href="${escapeHtml(r.name)}.html">${escapeHtml(r.name)}</a></td><td>${r.ok ? "ok" : `failed: ${escapeHtml(r.error)}`}</td><td>${r.cells}</td><td>${(r.ms / 1000).toFixed(1)} s</td></tr>`,
    )
    .join("");
  return `<!doctype html><html><head><meta charset="utf-8"><title>quantbook walkthrough</title><style>${REPORT_CSS}</style></head><body>
<h1>quantbook walkthrough</h1>
<p>The article's case, notebook by notebook: executed on a fresh quantbook kernel by <code>npm run walkthrough</code>. Plots are static SVG; nothing here needs a running kernel.</p>
<table class="qb-table"><thead><tr><th>notebook</th><th>status</th><th>cells</th><th>time</th></tr></thead><tbody>${rows}</tbody></table>
</body></html>`;
}

export async function walkthrough(only?: RegExp): Promise<NotebookRun[]> {
  const files = readdirSync(NOTEBOOKS)
    .filter((f) => /^\d\d_.*\.ipynb$/.test(f) && (!only || only.test(f)))
    .sort();
  mkdirSync(path.join(REPORT, "notebooks"), { recursive: true });
  const runs: NotebookRun[] = [];
  const nav = `<nav><a href="index.html">index</a>${files.map((f) => `<a href="${f.replace(/\.ipynb$/, ".html")}">${f.replace(/\.ipynb$/, "")}</a>`).join("")}</nav>`;
  for (const f of files) {
    const { nb, run } = await runNotebook(f);
    writeFileSync(path.join(REPORT, "notebooks", f), `${JSON.stringify(nb, null, 1)}\n`);
    writeFileSync(path.join(REPORT, `${run.name}.html`), notebookHtml(nb, run.name, nav));
    runs.push(run);
    console.log(
      `${run.ok ? "ok  " : "FAIL"} ${run.name}: ${run.cells} cells, ${(run.ms / 1000).toFixed(1)} s (first result after ${(run.firstResultMs / 1000).toFixed(2)} s)${run.error ? ` — ${run.error}` : ""}`,
    );
  }
  writeFileSync(path.join(REPORT, "index.html"), indexHtml(runs));
  return runs;
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
