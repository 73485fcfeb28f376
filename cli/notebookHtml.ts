/**
 * Static HTML for notebooks: markdown cells through `marked`, code cells with their outputs —
 * HTML tables, text, images, and charts. A Vega-Lite (or Vega) output becomes an interactive
 * chart drawn by vega-embed from script files beside the page (or inlined into it), with the
 * SVG the kernel rendered kept inside the same output as the fallback: a reader with scripts
 * off, or a page copied without its `vendor/` folder, still sees every plot.
 */
import { escapeHtml } from "../src/util/display";

export interface NbCell {
  cell_type: "markdown" | "code" | "raw";
  source: string | string[];
  /** Images pasted into a markdown cell: name -> { mime type: base64 }. */
  attachments?: Record<string, Record<string, string | string[]>>;
  outputs?: NbCellOutput[];
  execution_count?: number | null;
  metadata?: Record<string, unknown>;
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

/** How a page loads the chart scripts: from `vendor/` beside it, inlined, or not at all (SVG only). */
export type ChartScripts = { kind: "beside"; prefix: string } | { kind: "inline"; code: string } | { kind: "none" };

const join = (s: string | string[] | undefined) => (Array.isArray(s) ? s.join("") : (s ?? ""));

// ANSI colour codes in tracebacks are noise in HTML
const stripAnsi = (s: string) => s.replace(/\u001b\[[0-9;]*m/g, "");

/** JSON that is safe inside a <script> element (no `</script>`, no `<!--`). */
const scriptJson = (v: unknown) =>
  JSON.stringify(v)
    .replace(/</g, "\\u003c")
    .replace(/\u2028/g, "\\u2028")
    .replace(/\u2029/g, "\\u2029");

/** The chart MIME types vega-embed draws, newest first. */
const CHART_TYPES = [
  "application/vnd.vegalite.v5+json",
  "application/vnd.vegalite.v4+json",
  "application/vnd.vegalite.v3+json",
  "application/vnd.vega.v5+json",
  "application/vnd.vega.v4+json",
];

/** Renders outputs of one page; numbers its charts. */
export class OutputRenderer {
  charts = 0;

  output(o: NbCellOutput): string {
    if (o.output_type === "stream")
      return `<pre class="qb-stream qb-${escapeHtml(o.name)}">${escapeHtml(join(o.text))}</pre>`;
    if (o.output_type === "error") {
      return `<pre class="qb-error">${escapeHtml(stripAnsi(`${o.ename}: ${o.evalue}\n${(o.traceback ?? []).join("\n")}`))}</pre>`;
    }
    // nbformat may store each MIME value as a list of lines
    const d = Object.fromEntries(
      Object.entries(o.data ?? {}).map(([k, v]) => [
        k,
        typeof v === "string" || Array.isArray(v) ? join(v as string | string[]) : v,
      ]),
    );
    const chartType = CHART_TYPES.find((t) => d[t] !== null && typeof d[t] === "object");
    const svg = typeof d["image/svg+xml"] === "string" ? d["image/svg+xml"] : null;
    if (chartType !== undefined) {
      const id = this.charts++;
      const fallback =
        svg ??
        (typeof d["image/png"] === "string"
          ? `<img src="data:image/png;base64,${d["image/png"]}">`
          : `<pre class="qb-text">${escapeHtml(String(d["text/plain"] ?? "chart"))}</pre>`);
      const mode = chartType.includes("vegalite") ? "vega-lite" : "vega";
      return (
        `<div class="qb-plot qb-chart" data-qb-chart="${id}" data-qb-mode="${mode}"><div class="qb-fallback">${fallback}</div></div>` +
        `<script type="application/json" id="qb-chart-${id}">${scriptJson(d[chartType])}</script>`
      );
    }
    if (svg !== null) return `<div class="qb-plot">${svg}</div>`;
    if (typeof d["text/html"] === "string") return `<div class="qb-html">${d["text/html"]}</div>`;
    if (typeof d["image/png"] === "string")
      return `<img class="qb-plot" src="data:image/png;base64,${d["image/png"]}">`;
    if (typeof d["image/jpeg"] === "string")
      return `<img class="qb-plot" src="data:image/jpeg;base64,${d["image/jpeg"]}">`;
    if (typeof d["text/markdown"] === "string") return `<div class="qb-md">${markdown(d["text/markdown"])}</div>`;
    if (typeof d["text/latex"] === "string") return `<pre class="qb-text">${escapeHtml(d["text/latex"])}</pre>`;
    if (typeof d["text/plain"] === "string") return `<pre class="qb-text">${escapeHtml(d["text/plain"])}</pre>`;
    return "";
  }
}

/** One output as HTML (charts without their scripts stay the SVG fallback). */
export function outputHtml(o: NbCellOutput): string {
  return new OutputRenderer().output(o);
}

function markdown(src: string): string {
  const { marked } = require("marked") as { marked: { parse(s: string): string } };
  return marked.parse(src);
}

const TS_KEYWORDS = new Set(
  (
    "abstract as async await break case catch class const continue default delete do else enum export extends false finally for from function " +
    "if implements import in instanceof interface let new null of private protected public readonly return static super switch this throw true " +
    "try type typeof undefined var void while yield"
  ).split(" "),
);

/**
 * TypeScript source as HTML with its comments, strings, numbers and keywords marked (classes
 * qb-c, qb-s, qb-n, qb-k): the page's own highlighter, so it works offline like the charts.
 * Every character of the source is kept, escaped.
 */
export function highlightTs(src: string): string {
  const token =
    /(\/\/[^\n]*|\/\*[\s\S]*?\*\/)|("(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'|`(?:[^`\\]|\\.)*`)|(\b\d[\d_]*(?:\.\d+)?(?:e[+-]?\d+)?\b)|([A-Za-z_$][\w$]*)/g;
  let out = "";
  let last = 0;
  for (let m = token.exec(src); m !== null; m = token.exec(src)) {
    out += escapeHtml(src.slice(last, m.index));
    const cls = m[1] ? "qb-c" : m[2] ? "qb-s" : m[3] ? "qb-n" : TS_KEYWORDS.has(m[4]) ? "qb-k" : null;
    out += cls === null ? escapeHtml(m[0]) : `<span class="${cls}">${escapeHtml(m[0])}</span>`;
    last = m.index + m[0].length;
  }
  return out + escapeHtml(src.slice(last));
}

export const REPORT_CSS = `
body { font-family: system-ui, sans-serif; max-width: 1000px; margin: 2rem auto; padding: 0 1rem; color: #222; line-height: 1.5; }
pre { background: #f6f8fa; padding: .6rem .8rem; overflow-x: auto; font-size: 13px; border-radius: 4px; }
.qb-code { border-left: 3px solid #4a7bd0; white-space: pre-wrap; overflow-wrap: anywhere; }
.qb-code .qb-c { color: #6a737d; font-style: italic; }
.qb-code .qb-s { color: #032f62; }
.qb-code .qb-n { color: #005cc5; }
.qb-code .qb-k { color: #d73a49; font-weight: 600; }
.qb-error { background: #fdecea; color: #8a1c1c; }
.qb-stderr { background: #fff6e5; }
.qb-out { margin: .3rem 0 1.2rem 1.2rem; }
table.qb-table { border-collapse: collapse; font-size: 13px; margin: .5rem 0; }
table.qb-table caption { text-align: left; font-weight: 600; padding: .3rem 0; }
table.qb-table th, table.qb-table td { border: 1px solid #ddd; padding: 2px 8px; text-align: right; }
table.qb-table td.qb-t { text-align: left; }
table.qb-table th:first-child { color: #888; }
.qb-plot svg { max-width: 100%; height: auto; }
.qb-chart.qb-live .qb-fallback { display: none; }
.qb-chart .vega-bindings { font-size: 13px; margin: .3rem 0; }
.qb-chart .vega-bind-name { margin-right: .5rem; }
.qb-note { color: #666; font-size: 13px; }
nav a { margin-right: 1rem; }
`;

/**
 * Browser code (a string: the project compiles without the DOM library). Draws every chart with
 * vega-embed when it is loaded; a chart that fails keeps its SVG. `window.qbCharts` says how it
 * went (the report test waits on `done`).
 */
export const HYDRATE_JS = `(function () {
  var state = { done: false, live: 0, failed: 0, errors: [], views: [] };
  window.qbCharts = state;
  var charts = Array.prototype.slice.call(document.querySelectorAll(".qb-chart"));
  if (typeof vegaEmbed !== "function") { state.done = true; state.missing = true; return; }
  Promise.all(charts.map(function (el) {
    var id = el.getAttribute("data-qb-chart");
    var spec;
    try { spec = JSON.parse(document.getElementById("qb-chart-" + id).textContent); }
    catch (e) { state.failed++; state.errors.push(String(e)); return null; }
    var target = document.createElement("div");
    target.className = "qb-live-chart";
    el.appendChild(target);
    return vegaEmbed(target, spec, { mode: el.getAttribute("data-qb-mode"), renderer: "svg", actions: false })
      .then(function (res) { el.classList.add("qb-live"); state.live++; state.views.push(res.view); })
      .catch(function (e) { target.remove(); state.failed++; state.errors.push(String(e)); });
  })).then(function () { state.done = true; });
})();`;

/** The vendor scripts, in load order (vega-embed needs the globals vega and vegaLite). */
export const VENDOR_FILES = [
  { name: "vega.min.js", from: "vega/build/vega.min.js" },
  { name: "vega-lite.min.js", from: "vega-lite/build/vega-lite.min.js" },
  { name: "vega-embed.min.js", from: "vega-embed/build/vega-embed.min.js" },
];

function scriptTags(scripts: ChartScripts): string {
  if (scripts.kind === "none") return "";
  const vendor =
    scripts.kind === "inline"
      ? `<script>${scripts.code.replace(/<\/script/gi, "<\\/script")}</script>`
      : VENDOR_FILES.map((f) => `<script src="${scripts.prefix}${f.name}"></script>`).join("");
  return `${vendor}<script>${HYDRATE_JS}</script>`;
}

const IMAGE_TYPES: Record<string, string> = {
  ".png": "image/png",
  ".jpg": "image/jpeg",
  ".jpeg": "image/jpeg",
  ".gif": "image/gif",
  ".svg": "image/svg+xml",
  ".webp": "image/webp",
};
const MAX_IMAGE_BYTES = 5 * 2 ** 20;

/**
 * Images in markdown that would break once the page moves: `attachment:name` (pasted images)
 * and paths relative to the notebook's folder become data URIs; a missing or unreadable file
 * keeps its path (and the browser shows it as missing, as Jupyter would).
 */
function embedImages(html: string, cell: NbCell, folder: string | undefined): string {
  return html.replace(/(<img\b[^>]*?\bsrc=")([^"]+)(")/g, (whole, pre: string, src: string, post: string) => {
    if (src.startsWith("attachment:")) {
      const att = cell.attachments?.[decodeURIComponent(src.slice("attachment:".length))];
      const mime = att && Object.keys(att).find((k) => k.startsWith("image/"));
      return mime ? `${pre}data:${mime};base64,${join(att[mime]).replace(/\s/g, "")}${post}` : whole;
    }
    if (folder === undefined || /^(data:|[a-z][a-z0-9+.-]*:|\/\/|#)/i.test(src)) return whole;
    const { readFileSync, statSync } = require("node:fs") as typeof import("node:fs");
    const { extname, resolve } = require("node:path") as typeof import("node:path");
    const file = resolve(folder, decodeURIComponent(src.replace(/&amp;/g, "&").split(/[?#]/)[0]));
    const mime = IMAGE_TYPES[extname(file).toLowerCase()];
    try {
      if (mime === undefined || statSync(file).size > MAX_IMAGE_BYTES) return whole;
      return `${pre}data:${mime};base64,${readFileSync(file).toString("base64")}${post}`;
    } catch {
      return whole;
    }
  });
}

/** A notebook as one HTML page; `folder` (the notebook's own) lets relative images be embedded. */
export function notebookHtml(
  nb: Notebook,
  title: string,
  nav = "",
  scripts: ChartScripts = { kind: "none" },
  folder?: string,
): string {
  const r = new OutputRenderer();
  const parts = nb.cells.map((cell) => {
    const src = join(cell.source);
    if (cell.cell_type === "markdown")
      return `<section class="qb-md">${embedImages(markdown(src), cell, folder)}</section>`;
    if (cell.cell_type !== "code") return `<pre>${escapeHtml(src)}</pre>`;
    const outs = (cell.outputs ?? []).map((o) => r.output(o)).join("\n");
    const count = cell.execution_count == null ? " " : String(cell.execution_count);
    return `<div class="qb-cell"><pre class="qb-code" title="In [${count}]">${highlightTs(src)}</pre><div class="qb-out">${outs}</div></div>`;
  });
  return `<!doctype html><html><head><meta charset="utf-8"><title>${escapeHtml(title)}</title><style>${REPORT_CSS}</style></head><body>${nav}${parts.join("\n")}${r.charts > 0 ? scriptTags(scripts) : ""}</body></html>`;
}
