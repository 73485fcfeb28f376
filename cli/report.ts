/**
 * `quantbook report <notebook.ipynb | folder>... [--execute] [--out DIR]`: renders notebooks —
 * as saved, or executed first on a fresh quantbook kernel — into a static HTML site: an index
 * and a page per notebook, readable with no kernel running. Charts are interactive (vega-embed,
 * from `vendor/` beside the pages or inlined with `--inline`; no network) with their SVG kept as
 * the fallback. `npm run walkthrough` is this command on the shipped `notebooks/` folder.
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { KernelClient } from "../kernel/client";
import { kernelSpec } from "../kernel/main";
import { escapeHtml } from "../src/util/display";
import { notebookHtml, REPORT_CSS, VENDOR_FILES, type ChartScripts, type Notebook } from "./notebookHtml";

export interface ReportOptions {
  /** Run every notebook top to bottom on a fresh kernel (in the notebook's folder) before rendering. */
  execute?: boolean;
  /** Output folder (created); default `quantbook-report`. */
  out?: string;
  /** Put the chart scripts into every page (one self-contained file each) instead of `vendor/`. */
  inline?: boolean;
  /** With `execute`: run the cells after a failing one too (their errors stay in the page). */
  allowErrors?: boolean;
  /** With `execute`: seconds one cell may run before it is interrupted; default 600. */
  cellTimeoutSec?: number;
  title?: string;
  /** Progress lines (one per notebook); default silent. */
  log?: (line: string) => void;
}

export interface NotebookRun {
  /** The page's name (`<name>.html`; with `execute`, `notebooks/<name>.ipynb`). */
  name: string;
  source: string;
  ok: boolean;
  executed: boolean;
  /** Code cells run (with `execute`) or present. */
  cells: number;
  charts: number;
  ms: number;
  firstResultMs: number;
  pageBytes: number;
  error?: string | undefined;
}

export interface ReportResult {
  out: string;
  index: string;
  runs: NotebookRun[];
  ms: number;
}

export class ReportError extends Error {}

const SKIP_DIRS = new Set(["node_modules", ".ipynb_checkpoints", ".git"]);

function notebooksUnder(dir: string, out: string): string[] {
  const found: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      if (!SKIP_DIRS.has(entry.name) && !entry.name.startsWith(".") && path.resolve(full) !== out)
        found.push(...notebooksUnder(full, out));
    } else if (entry.name.endsWith(".ipynb")) found.push(full);
  }
  return found.sort();
}

/** The notebooks named by the inputs: files as given, folders searched (checkpoints, node_modules and the output folder skipped). */
export function collectNotebooks(inputs: string[], out: string): string[] {
  if (inputs.length === 0)
    throw new ReportError(
      "quantbook report: name at least one notebook (.ipynb) or folder, e.g. `quantbook report notebooks/`",
    );
  const files: string[] = [];
  for (const input of inputs) {
    const full = path.resolve(input);
    if (!existsSync(full)) throw new ReportError(`quantbook report: ${input}: no such file or folder`);
    if (statSync(full).isDirectory()) {
      const found = notebooksUnder(full, path.resolve(out));
      if (found.length === 0) throw new ReportError(`quantbook report: ${input}: the folder has no notebooks (.ipynb)`);
      files.push(...found);
    } else if (full.endsWith(".ipynb")) files.push(full);
    else
      throw new ReportError(`quantbook report: ${input}: not a notebook (expected a .ipynb file or a folder of them)`);
  }
  return [...new Set(files)];
}

/** Page names: the file name, prefixed by its folder when two notebooks share one. */
function pageNames(files: string[]): string[] {
  const slug = (s: string) => s.replace(/\.ipynb$/, "").replace(/[^A-Za-z0-9_.-]+/g, "_");
  const base = files.map((f) => slug(path.basename(f)));
  const names = base.map((b, i) =>
    base.indexOf(b) !== base.lastIndexOf(b) ? `${slug(path.basename(path.dirname(files[i])))}-${b}` : b,
  );
  return names.map((n, i) => (names.indexOf(n) !== i ? `${n}-${i}` : n));
}

function readNotebook(file: string): Notebook {
  let nb: Notebook;
  try {
    nb = JSON.parse(readFileSync(file, "utf8")) as Notebook;
  } catch (e) {
    throw new ReportError(`${file}: not a notebook: ${(e as Error).message}`);
  }
  if (nb === null || typeof nb !== "object" || !Array.isArray(nb.cells))
    throw new ReportError(`${file}: not a notebook: no list of cells (nbformat 4 expected)`);
  if (typeof nb.nbformat === "number" && nb.nbformat < 4)
    throw new ReportError(`${file}: nbformat ${nb.nbformat}; save it with Jupyter as nbformat 4 first`);
  const text = (v: unknown) => typeof v === "string" || (Array.isArray(v) && v.every((l) => typeof l === "string"));
  nb.cells.forEach((cell, i) => {
    const where = `${file}: cell ${i + 1}`;
    if (cell === null || typeof cell !== "object" || !["markdown", "code", "raw"].includes(cell.cell_type))
      throw new ReportError(`${where}: not a markdown, code or raw cell (nbformat 4 expected)`);
    if (!text(cell.source)) throw new ReportError(`${where}: its source is not text (a string or a list of lines)`);
    if (
      cell.outputs !== undefined &&
      (!Array.isArray(cell.outputs) ||
        !cell.outputs.every((o) => o !== null && typeof o === "object" && typeof o.output_type === "string"))
    ) {
      throw new ReportError(`${where}: its outputs are not a list of nbformat outputs`);
    }
  });
  return nb;
}

/** The kernel a notebook names when it is not quantbook's (a Python notebook, say), else null. */
function foreignKernel(nb: Notebook): string | null {
  const spec = nb.metadata?.kernelspec as { name?: string; language?: string; display_name?: string } | undefined;
  const lang = (nb.metadata?.language_info as { name?: string } | undefined)?.name ?? spec?.language;
  if (spec?.name === "quantbook" || spec?.name === "tslab" || lang === "typescript") return null;
  if (spec?.name === undefined && lang === undefined) return null;
  return `'${spec?.display_name ?? spec?.name ?? lang}'`;
}

const source = (s: string | string[]) => (Array.isArray(s) ? s.join("") : s);

/** Runs a notebook's code cells in order on a fresh kernel started in the notebook's folder; outputs replace the saved ones. */
export async function executeNotebook(
  nb: Notebook,
  cwd: string,
  opts: { allowErrors?: boolean; cellTimeoutSec?: number } = {},
): Promise<{ cells: number; firstResultMs: number; error?: string }> {
  const start = performance.now();
  const client = await KernelClient.start(kernelSpec().argv as string[], cwd);
  let firstResultMs = 0;
  let error: string | undefined;
  let cells = 0;
  let stopped = false;
  try {
    for (const cell of nb.cells) {
      if (cell.cell_type !== "code") continue;
      if (stopped) {
        // not run: no stale outputs from the saved file next to fresh ones
        cell.outputs = [];
        cell.execution_count = null;
        continue;
      }
      cells++;
      const timeoutMs = (opts.cellTimeoutSec ?? 600) * 1000;
      let r;
      try {
        r = await client.execute(source(cell.source), timeoutMs);
      } catch {
        await client.interruptByMessage().catch(() => undefined);
        error = `cell ${cells}: did not finish within ${timeoutMs / 1000} s (interrupted; raise it with --timeout)`;
        cell.outputs = [{ output_type: "error", ename: "Timeout", evalue: error, traceback: [] }];
        stopped = true;
        continue;
      }
      if (firstResultMs === 0) firstResultMs = performance.now() - start;
      cell.outputs = r.outputs;
      cell.execution_count = r.executionCount;
      // per-cell timing, as nbclient records it (the one part of an executed notebook that changes from run to run)
      cell.metadata = { ...(cell.metadata ?? {}), execution: r.timing };
      if (r.status === "error") {
        const e = r.outputs.find((o) => o.output_type === "error") as { ename: string; evalue: string } | undefined;
        error ??= `cell ${cells}: ${e?.ename}: ${e?.evalue}`;
        if (!opts.allowErrors) stopped = true;
      }
    }
  } finally {
    await client.shutdown();
  }
  return { cells, firstResultMs, ...(error === undefined ? {} : { error }) };
}

/** Resolves a file inside an installed package, even one whose `exports` hide it. */
function packageFile(spec: string): string {
  try {
    return require.resolve(spec);
  } catch {
    const [pkg, ...rest] = spec.split("/");
    let dir = path.dirname(require.resolve(pkg));
    while (
      !existsSync(path.join(dir, "package.json")) ||
      (JSON.parse(readFileSync(path.join(dir, "package.json"), "utf8")) as { name?: string }).name !== pkg
    ) {
      const up = path.dirname(dir);
      if (up === dir) throw new ReportError(`cannot find ${spec} in the installed packages (reinstall quantbook)`);
      dir = up;
    }
    return path.join(dir, ...rest);
  }
}

function chartScripts(out: string, inline: boolean): ChartScripts {
  if (inline)
    return { kind: "inline", code: VENDOR_FILES.map((f) => readFileSync(packageFile(f.from), "utf8")).join("\n;\n") };
  mkdirSync(path.join(out, "vendor"), { recursive: true });
  for (const f of VENDOR_FILES) copyFileSync(packageFile(f.from), path.join(out, "vendor", f.name));
  return { kind: "beside", prefix: "vendor/" };
}

function indexHtml(title: string, runs: NotebookRun[], execute: boolean): string {
  const status = (r: NotebookRun) =>
    r.ok ? (r.executed ? "executed" : "as saved") : `<span class="qb-error">failed: ${escapeHtml(r.error)}</span>`;
  const rows = runs
    .map(
      (r) =>
        `<tr><td class="qb-t">${r.pageBytes > 0 ? `<a href="${escapeHtml(r.name)}.html">${escapeHtml(r.name)}</a>` : escapeHtml(r.name)}</td><td class="qb-t">${status(r)}</td><td>${r.cells}</td><td>${r.charts}</td><td>${r.executed ? `${(r.ms / 1000).toFixed(1)} s` : ""}</td></tr>`,
    )
    .join("");
  const how = execute
    ? "Each notebook was executed top to bottom on a fresh quantbook kernel, then rendered."
    : "Notebooks rendered as saved (outputs are those in the files).";
  return `<!doctype html><html><head><meta charset="utf-8"><title>${escapeHtml(title)}</title><style>${REPORT_CSS}</style></head><body>
<h1>${escapeHtml(title)}</h1>
<p>${how} Charts are interactive (hover for values; some have sliders) and fall back to static SVG; nothing here needs a running kernel or a network.</p>
<table class="qb-table"><thead><tr><th>notebook</th><th>status</th><th>code cells</th><th>charts</th><th>time</th></tr></thead><tbody>${rows}</tbody></table>
</body></html>`;
}

/** Builds the site; never throws for one bad notebook (it is listed as failed), only for bad arguments. */
export async function report(inputs: string[], opts: ReportOptions = {}): Promise<ReportResult> {
  const t0 = performance.now();
  const out = path.resolve(opts.out ?? "quantbook-report");
  const files = collectNotebooks(inputs, out);
  const names = pageNames(files);
  const execute = opts.execute ?? false;
  mkdirSync(out, { recursive: true });
  if (execute) mkdirSync(path.join(out, "notebooks"), { recursive: true });
  const scripts = chartScripts(out, opts.inline ?? false);
  const nav = `<nav><a href="index.html">index</a>${names.map((n) => `<a href="${escapeHtml(n)}.html">${escapeHtml(n)}</a>`).join("")}</nav>`;
  const runs: NotebookRun[] = [];
  for (const [i, file] of files.entries()) {
    const name = names[i];
    const start = performance.now();
    const run: NotebookRun = {
      name,
      source: file,
      ok: true,
      executed: false,
      cells: 0,
      charts: 0,
      ms: 0,
      firstResultMs: 0,
      pageBytes: 0,
    };
    try {
      const nb = readNotebook(file);
      const kernel = foreignKernel(nb);
      if (execute && kernel !== null) {
        Object.assign(run, {
          ok: false,
          error: `${path.basename(file)} is a ${kernel} notebook; --execute runs notebooks on the quantbook kernel only (rendered as saved instead; drop --execute for it)`,
        });
        run.cells = nb.cells.filter((c) => c.cell_type === "code").length;
      } else if (execute) {
        const r = await executeNotebook(nb, path.dirname(file), opts);
        Object.assign(run, {
          executed: true,
          cells: r.cells,
          firstResultMs: r.firstResultMs,
          ok: r.error === undefined,
          error: r.error,
        });
        writeFileSync(path.join(out, "notebooks", `${name}.ipynb`), `${JSON.stringify(nb, null, 1)}\n`);
      } else run.cells = nb.cells.filter((c) => c.cell_type === "code").length;
      const page = notebookHtml(nb, name, nav, scripts, path.dirname(file));
      run.charts = (page.match(/data-qb-chart="/g) ?? []).length;
      writeFileSync(path.join(out, `${name}.html`), page);
      run.pageBytes = Buffer.byteLength(page);
    } catch (e) {
      run.ok = false;
      run.error = e instanceof Error ? e.message : String(e);
    }
    run.ms = performance.now() - start;
    runs.push(run);
    opts.log?.(
      `${run.ok ? "ok  " : "FAIL"} ${name}: ${run.cells} code cells, ${run.charts} charts${run.executed ? `, ${(run.ms / 1000).toFixed(1)} s (first result after ${(run.firstResultMs / 1000).toFixed(2)} s)` : ""}${run.error ? ` — ${run.error}` : ""}`,
    );
  }
  const index = path.join(out, "index.html");
  writeFileSync(index, indexHtml(opts.title ?? "quantbook report", runs, execute));
  return { out, index, runs, ms: performance.now() - t0 };
}

export const REPORT_USAGE = `usage: quantbook report <notebook.ipynb | folder>... [options]

Renders notebooks into a static HTML site (index.html and a page per notebook) that reads
with no kernel running; charts are interactive offline, with SVG fallbacks.

options:
  --execute        run each notebook on a fresh quantbook kernel first (in its own folder)
  --out DIR        where to write the site (default: quantbook-report)
  --inline         put the chart scripts into every page (self-contained files, ~0.8 MB each)
  --allow-errors   with --execute: keep running the cells after one that fails
  --timeout S      with --execute: seconds a cell may run before it is interrupted (default 600)
  --title TEXT     the index page's title
`;

/** `quantbook report ...`: returns the process exit code (1 when a notebook failed, 2 for bad arguments). */
export async function reportCommand(
  args: string[],
  log: (s: string) => void = console.log,
  warn: (s: string) => void = console.error,
): Promise<number> {
  const inputs: string[] = [];
  const opts: ReportOptions = { log };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const value = () => {
      const v = args[++i];
      if (v === undefined || v.startsWith("--"))
        throw new ReportError(`quantbook report: ${a} needs a value\n\n${REPORT_USAGE}`);
      return v;
    };
    if (a === "--execute") opts.execute = true;
    else if (a === "--inline") opts.inline = true;
    else if (a === "--allow-errors") opts.allowErrors = true;
    else if (a === "--out") opts.out = value();
    else if (a === "--title") opts.title = value();
    else if (a === "--timeout") {
      const v = value();
      const s = Number(v);
      if (!(s > 0)) throw new ReportError(`quantbook report: --timeout ${v}: expected a number of seconds > 0`);
      opts.cellTimeoutSec = s;
    } else if (a === "--help" || a === "-h") {
      log(REPORT_USAGE);
      return 0;
    } else if (a.startsWith("-")) throw new ReportError(`quantbook report: unknown option ${a}\n\n${REPORT_USAGE}`);
    else inputs.push(a);
  }
  if (inputs.length === 0)
    throw new ReportError(`quantbook report: name at least one notebook or folder\n\n${REPORT_USAGE}`);
  const r = await report(inputs, opts);
  const ok = r.runs.filter((x) => x.ok).length;
  (ok === r.runs.length ? log : warn)(
    `report: ${ok}/${r.runs.length} notebooks ok in ${(r.ms / 1000).toFixed(1)} s; open ${path.relative(process.cwd(), r.index) || r.index}`,
  );
  return ok === r.runs.length ? 0 : 1;
}
