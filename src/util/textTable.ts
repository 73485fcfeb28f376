/** The text form of a table: one cell formatter, one fixed-width layout. */
export type Cell = string | number | boolean | null | undefined;

/** The one cell formatter: of `.text`, of a notebook's plain-text view and of the HTML table. */
export function formatCell(v: Cell): string {
  if (v === null || v === undefined) return "";
  if (typeof v === "number") return Number.isInteger(v) ? String(v) : v.toPrecision(8);
  return String(v);
}

/**
 * A fixed-width table (the reference toolchain's *_statistic.txt layout). With `maxRows`, a
 * longer table shows its first rows, a marker row and its last five.
 */
export function textTable(rows: Record<string, Cell>[], columns: string[], maxRows = Infinity): string {
  const cut = rows.length > maxRows ? [...rows.slice(0, maxRows - 5), null, ...rows.slice(-5)] : rows;
  const cells = cut.map((r) => columns.map((c) => (r === null ? "…" : formatCell(r[c]))));
  const widths = columns.map((c, i) => Math.max(c.length, ...cells.map((r) => r[i].length)));
  const line = (vals: string[]) =>
    vals
      .map((v, i) => v.padEnd(widths[i]))
      .join(" | ")
      .trimEnd();
  const sep = widths.map((w) => "-".repeat(w)).join("-+-");
  return [line(columns), sep, ...cells.map(line)].join("\n") + "\n";
}
