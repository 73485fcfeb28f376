/** HTML helpers for rich display: escaping and plain tables. */

export function escapeHtml(s: unknown): string {
  return String(s).replace(
    /[&<>"']/g,
    (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c] as string,
  );
}

export function formatCell(v: unknown): string {
  if (typeof v === "number") {
    if (Number.isInteger(v)) return String(v);
    const a = Math.abs(v);
    return a !== 0 && (a < 1e-3 || a >= 1e6) ? v.toExponential(4) : v.toPrecision(6);
  }
  if (v === null || v === undefined) return "";
  return String(v);
}

/**
 * A table with a caption; long tables show their first `head` and last `tail` rows with a
 * marker row between them.
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
  const body = shown
    .map(([i, r]) =>
      r === null
        ? `<tr><td>…</td>${columns.map(() => "<td>…</td>").join("")}</tr>`
        : `<tr><th>${escapeHtml(idx[i])}</th>${r.map((v) => `<td${typeof v === "number" ? "" : ' class="qb-t"'}>${escapeHtml(formatCell(v))}</td>`).join("")}</tr>`,
    )
    .join("");
  const caption = opts.caption ? `<caption>${escapeHtml(opts.caption)}</caption>` : "";
  return `<table class="qb-table">${caption}<thead>${th}</thead><tbody>${body}</tbody></table>`;
}

/** The same table as aligned plain text. */
export function textTable(columns: string[], rows: unknown[][], maxRows = 25): string {
  const cut = rows.length > maxRows ? [...rows.slice(0, maxRows - 5), null, ...rows.slice(-5)] : rows;
  const cells = cut.map((r) => (r === null ? columns.map(() => "…") : r.map(formatCell)));
  const widths = columns.map((c, i) => Math.max(c.length, ...cells.map((r) => r[i].length)));
  const line = (vals: string[]) =>
    vals
      .map((v, i) => v.padEnd(widths[i]))
      .join("  ")
      .trimEnd();
  return [line(columns), ...cells.map(line)].join("\n");
}
