/**
 * danfo DataFrames from plain records. danfojs-node is loaded on first use (it takes about half
 * a second), so the core library loads lean.
 */
import type { DataFrame } from "danfojs-node";

type Row = Record<string, string | number | boolean | null>;

let danfo: typeof import("danfojs-node") | null = null;

function load(): typeof import("danfojs-node") {
  if (danfo === null) danfo = require("danfojs-node") as typeof import("danfojs-node");
  return danfo;
}

/** A DataFrame with one row per record and the given column order (all keys when omitted). */
export function toDataFrame(rows: Row[], columns?: string[]): DataFrame {
  const cols = columns ?? [...new Set(rows.flatMap((r) => Object.keys(r)))];
  const data: Record<string, (string | number | boolean | null)[]> = {};
  for (const c of cols) data[c] = rows.map((r) => r[c] ?? null);
  const { DataFrame: DF } = load();
  return rows.length === 0 ? new DF([], { columns: cols }) : new DF(data, { columns: cols });
}
