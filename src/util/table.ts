/**
 * The one result shape of quantbook's tools: `rows` (plain records), `caption`, `text` (a
 * fixed-width table, the layout of the reference toolchain's *_statistic.txt files) and
 * `toDataFrame()` (a danfo DataFrame). Display code renders these from their records; tools only
 * build them.
 *
 * danfojs-node is an optional peer: quantbook does not install it, because its `xlsx` dependency
 * downloads from a CDN outside the npm registry (and it pulls a second, native tfjs). Nothing but
 * `toDataFrame()` needs it, and that loads it on first use.
 */
import { errors } from "../messages";
import { DISPLAY, partsBundle, tableBundle, type MimeBundle } from "./display";
import { textTable } from "./textTable";

export type Row = Record<string, string | number | boolean | null>;

/**
 * What `toDataFrame()` returns: a danfo `DataFrame` (typed here by the members quantbook's users
 * reach for, so quantbook's types do not depend on danfo; cast to `dfd.DataFrame` for the rest).
 */
export interface DataFrame {
  readonly columns: string[];
  readonly shape: number[];
  readonly values: unknown[];
  head(rows?: number): DataFrame;
  tail(rows?: number): DataFrame;
  print(): void;
  toString(): string;
}

type Danfo = { DataFrame: new (data: unknown, opts: { columns: string[] }) => DataFrame };
let danfo: Danfo | null = null;

/** danfojs-node (or danfojs), loaded on first use — it takes about half a second. */
function load(): Danfo {
  if (danfo !== null) return danfo;
  let first: unknown;
  for (const pkg of ["danfojs-node", "danfojs"]) {
    try {
      danfo = require(pkg) as Danfo;
      return danfo;
    } catch (e) {
      first ??= e;
    }
  }
  throw errors.missingPackage(
    "toDataFrame()",
    "danfojs-node",
    'npm install danfojs-node (on a machine without internet access, add to your package.json: "overrides": { "danfojs-node": { "xlsx": "0.18.5", "@tensorflow/tfjs-node": "npm:@tensorflow/tfjs@4.22.0" } }); or use the result\'s rows, toRecords() or text',
    first,
  );
}

/** A DataFrame with one row per record and the given column order (all keys when omitted). */
export function toDataFrame(rows: Row[], columns?: string[]): DataFrame {
  const cols = columns ?? [...new Set(rows.flatMap((r) => Object.keys(r)))];
  const data: Record<string, (string | number | boolean | null)[]> = {};
  for (const c of cols) data[c] = rows.map((r) => r[c] ?? null);
  const { DataFrame: DF } = load();
  return rows.length === 0 ? new DF([], { columns: cols }) : new DF(data, { columns: cols });
}
/** A tool's result: its rows with a caption, a text table and a danfo DataFrame on demand. */
export interface Table<R> {
  rows: R[];
  caption: string;
  /** Column order of the text table and the DataFrame. */
  columns: string[];
  text: string;
  toDataFrame(): DataFrame;
  /** The rows as plain cells in `columns` (what the text, the HTML display and the DataFrame show). */
  toRecords(): Row[];
  /** Its notebook display (the display protocol): the HTML table and the text table. */
  [DISPLAY](): MimeBundle;
}

/** A Table of `rows` (flattened to plain cells by `plain`) in `columns` order. */
export function makeTable<R>(
  caption: string,
  rows: R[],
  columns: string[],
  plain: (r: R) => Row = (r) => r as unknown as Row,
): Table<R> {
  const flat = rows.map(plain);
  return {
    rows,
    caption,
    columns,
    text: textTable(flat, columns),
    toDataFrame: () => toDataFrame(flat, columns),
    toRecords: () => flat.map((r) => ({ ...r })),
    [DISPLAY]() {
      // `this`: a result that spreads a table and changes its caption shows the new one
      return tableBundle(this.caption, this.columns, this.toRecords());
    },
  };
}

/** A result of several tables under one caption (statistics: the baseline and the analysis model). */
export type Report<P extends Record<string, Table<unknown>>> = P & {
  caption: string;
  /** Its notebook display (the display protocol): each table under its name. */
  [DISPLAY](): MimeBundle;
};

/** A Report of `parts`, shown in their order. */
export function makeReport<P extends Record<string, Table<unknown>>>(caption: string, parts: P): Report<P> {
  return {
    ...parts,
    caption,
    [DISPLAY]: () => partsBundle(Object.entries(parts)),
  };
}
