/**
 * Static HTML for executed notebooks: markdown cells through `marked`, code cells with their
 * outputs — SVG plots inline, HTML tables, text — so a report reads right with no kernel running.
 */
import { escapeHtml } from "../src/display/html";

export interface NbCell {
  cell_type: "markdown" | "code" | "raw";
  source: string | string[];
  outputs?: NbCellOutput[];
  execution_count?: number | null;
}

export interface NbCellOutput {
  output_type: string;
  name?: string;
  text?: string | string[];
  data?: Record<string, unknown>;
  ename?: string;
  evalue?: string;
  traceback?: string[];
}

export interface Notebook {
  cells: NbCell[];
  metadata: Record<string, unknown>;
  nbformat: number;
  nbformat_minor: number;
}

const join = (s: string | string[] | undefined) => (Array.isArray(s) ? s.join("") : (s ?? ""));

// ANSI colour codes in tracebacks are noise in HTML
const stripAnsi = (s: string) => s.replace(/\u001b\[[0-9;]*m/g, "");

export function outputHtml(o: NbCellOutput): string {
  if (o.output_type === "stream") return `<pre class="qb-stream qb-${escapeHtml(o.name)}">${escapeHtml(join(o.text))}</pre>`;
  if (o.output_type === "error") {
    return `<pre class="qb-error">${escapeHtml(stripAnsi(`${o.ename}: ${o.evalue}\n${(o.traceback ?? []).join("\n")}`))}</pre>`;
  }
  // nbformat may store each MIME value as a list of lines
  const d = Object.fromEntries(Object.entries(o.data ?? {}).map(([k, v]) => [k, typeof v === "string" || Array.isArray(v) ? join(v as string | string[]) : v]));
  if (typeof d["image/svg+xml"] === "string") return `<div class="qb-plot">${d["image/svg+xml"]}</div>`;
  if (typeof d["text/html"] === "string") return `<div class="qb-html">${d["text/html"]}</div>`;
  if (typeof d["image/png"] === "string") return `<img class="qb-plot" src="data:image/png;base64,${d["image/png"]}">`;
  if (typeof d["text/markdown"] === "string") return `<div class="qb-md">${markdown(d["text/markdown"])}</div>`;
  if (typeof d["text/plain"] === "string") return `<pre class="qb-text">${escapeHtml(d["text/plain"])}</pre>`;
  return "";
}

function markdown(src: string): string {
  const { marked } = require("marked") as { marked: { parse(s: string): string } };
  return marked.parse(src);
}

export const REPORT_CSS = `
body { font-family: system-ui, sans-serif; max-width: 1000px; margin: 2rem auto; padding: 0 1rem; color: #222; line-height: 1.5; }
pre { background: #f6f8fa; padding: .6rem .8rem; overflow-x: auto; font-size: 13px; border-radius: 4px; }
.qb-code { border-left: 3px solid #4a7bd0; }
.qb-error { background: #fdecea; color: #8a1c1c; }
.qb-stderr { background: #fff6e5; }
.qb-out { margin: .3rem 0 1.2rem 1.2rem; }
table.qb-table { border-collapse: collapse; font-size: 13px; margin: .5rem 0; }
table.qb-table caption { text-align: left; font-weight: 600; padding: .3rem 0; }
table.qb-table th, table.qb-table td { border: 1px solid #ddd; padding: 2px 8px; text-align: right; }
table.qb-table td.qb-t { text-align: left; }
table.qb-table th:first-child { color: #888; }
.qb-plot svg { max-width: 100%; height: auto; }
nav a { margin-right: 1rem; }
`;

export function notebookHtml(nb: Notebook, title: string, nav = ""): string {
  const parts = nb.cells.map((cell) => {
    const src = join(cell.source);
    if (cell.cell_type === "markdown") return `<section class="qb-md">${markdown(src)}</section>`;
    if (cell.cell_type !== "code") return `<pre>${escapeHtml(src)}</pre>`;
    const outs = (cell.outputs ?? []).map(outputHtml).join("\n");
    const count = cell.execution_count == null ? " " : String(cell.execution_count);
    return `<div class="qb-cell"><pre class="qb-code" title="In [${count}]">${escapeHtml(src)}</pre><div class="qb-out">${outs}</div></div>`;
  });
  return `<!doctype html><html><head><meta charset="utf-8"><title>${escapeHtml(title)}</title><style>${REPORT_CSS}</style></head><body>${nav}${parts.join("\n")}</body></html>`;
}
