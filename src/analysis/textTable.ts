/** Fixed-width text tables, the layout of the reference toolchain's *_statistic.txt files. */

type Cell = string | number | boolean | null | undefined;

function fmt(v: Cell): string {
  if (v === null || v === undefined) return "";
  if (typeof v === "number") return Number.isInteger(v) ? String(v) : v.toPrecision(8);
  return String(v);
}

export function textTable(rows: Record<string, Cell>[], columns: string[]): string {
  const cells = rows.map((r) => columns.map((c) => fmt(r[c])));
  const widths = columns.map((c, i) => Math.max(c.length, ...cells.map((r) => r[i].length)));
  const line = (vals: string[]) =>
    vals
      .map((v, i) => v.padEnd(widths[i]))
      .join(" | ")
      .trimEnd();
  const sep = widths.map((w) => "-".repeat(w)).join("-+-");
  return [line(columns), sep, ...cells.map(line)].join("\n") + "\n";
}
