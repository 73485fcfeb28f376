/**
 * The display protocol every quantbook result implements: one symbol, one method. A value with a
 * `[DISPLAY]()` method returns its own Jupyter MIME bundle (Deno's kernel uses the same symbol), so
 * the kernel and `qb.display.show` never guess what a result is. Tables, reports of several tables,
 * text reports (check reports, the integer model) and modules all draw themselves here.
 */
import { formatCell, textTable, type Cell } from "./textTable";

export const DISPLAY = Symbol.for("Jupyter.display");

export type MimeBundle = Record<string, unknown>;

/** Anything that draws itself. */
export interface Displayable {
  [DISPLAY](): MimeBundle | Promise<MimeBundle>;
}

export function isDisplayable(v: unknown): v is Displayable {
  return (
    v !== null &&
    (typeof v === "object" || typeof v === "function") &&
    typeof (v as Record<symbol, unknown>)[DISPLAY] === "function"
  );
}

export function escapeHtml(s: unknown): string {
  return String(s).replace(
    /[&<>"']/g,
    (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c] as string,
  );
}

/**
 * An HTML table with a caption; a long one shows its first `head` and last `tail` rows with a
 * marker row between them. Cells are formatted as in the text table (one cell formatter).
 */
export function htmlTable(
  columns: string[],
  rows: unknown[][],
  opts: { caption?: string; head?: number; tail?: number; index?: (number | string)[] } = {},
): string {
  const head = opts.head ?? 20;
  const tail = opts.tail ?? 5;
  const idx = opts.index ?? rows.map((_, i) => i);
  const shown: [number, unknown[] | null][] =
    rows.length > head + tail
      ? [
          ...rows.slice(0, head).map((r, i) => [i, r] as [number, unknown[]]),
          [-1, null],
          ...rows.slice(-tail).map((r, i) => [rows.length - tail + i, r] as [number, unknown[]]),
        ]
      : rows.map((r, i) => [i, r]);
  const th = `<tr><th></th>${columns.map((c) => `<th>${escapeHtml(c)}</th>`).join("")}</tr>`;
  const cell = (v: unknown) =>
    `<td${typeof v === "number" ? "" : ' class="qb-t"'}>${escapeHtml(formatCell(v as Cell))}</td>`;
  const body = shown
    .map(([i, r]) =>
      r === null
        ? `<tr><td>…</td>${columns.map(() => "<td>…</td>").join("")}</tr>`
        : `<tr><th>${escapeHtml(idx[i])}</th>${r.map(cell).join("")}</tr>`,
    )
    .join("");
  const caption = opts.caption ? `<caption>${escapeHtml(opts.caption)}</caption>` : "";
  return `<table class="qb-table">${caption}<thead>${th}</thead><tbody>${body}</tbody></table>`;
}

/** Rows shown in a notebook's plain-text view of a table (the first ones, a marker, the last five). */
const TEXT_ROWS = 25;

/** A table's bundle: an HTML table and the text table (`.text`'s layout), both under one caption. */
export function tableBundle(caption: string, columns: string[], records: Record<string, Cell>[]): MimeBundle {
  if (records.length === 0) {
    const text = caption || "empty table";
    return { "text/html": `<p>${escapeHtml(text)}</p>`, "text/plain": text };
  }
  const cap = `${caption ? `${caption} ` : ""}(${records.length} rows × ${columns.length} columns)`;
  const values = records.map((r) => columns.map((c) => r[c] ?? null));
  return {
    "text/html": htmlTable(columns, values, { caption: cap }),
    "text/plain": `${cap}\n${textTable(records, columns, TEXT_ROWS)}`,
  };
}

/** A text report's bundle: its caption, then its text (preformatted in HTML). */
export function textBundle(caption: string | undefined, text: string): MimeBundle {
  return {
    "text/html": `${caption ? `<p>${escapeHtml(caption)}</p>` : ""}<pre>${escapeHtml(text)}</pre>`,
    "text/plain": caption ? `${caption}\n${text}` : text,
  };
}

/** Several parts under headings (a report of tables: statistics' baseline and analysis). */
export function partsBundle(parts: [string, { [DISPLAY](): MimeBundle }][]): MimeBundle {
  const bundles = parts.map(([k, p]) => [k, p[DISPLAY]()] as const);
  return {
    "text/html": bundles.map(([k, b]) => `<h4>${escapeHtml(k)}</h4>${String(b["text/html"] ?? "")}`).join("\n"),
    "text/plain": bundles.map(([k, b]) => `${k}:\n${String(b["text/plain"] ?? "")}`).join("\n\n"),
  };
}
