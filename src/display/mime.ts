/**
 * Rich display: turns a value into a Jupyter MIME bundle. The only place that knows MIME types.
 *
 * - a value that draws itself (the display protocol of src/util/display.ts, which every
 *   quantbook result and module implements): the bundle it returns;
 * - danfo DataFrames / Series: the same table as a quantbook result;
 * - Vega-Lite specs: the spec as `application/vnd.vegalite.v5+json`, an SVG rendered in Node,
 *   and text — in one bundle;
 * - tensors: shape, dtype and values;
 * - anything else: an array of plain records as a table, or inspect().
 */
import * as tf from "@tensorflow/tfjs";
import { inspect } from "node:util";
import { DISPLAY, htmlTable, isDisplayable, tableBundle, type MimeBundle } from "../util/display";
import { isVegaLiteSpec, renderSvg, VEGA_LITE_MIME } from "./vega";
import { errors } from "../messages";

export type { MimeBundle } from "../util/display";
export { DISPLAY as DISPLAY_SYMBOL } from "../util/display";

interface FrameLike {
  columns: string[];
  values: unknown[][];
  index: (string | number)[];
  shape: number[];
}

function isFrame(v: unknown): v is FrameLike {
  return (
    v !== null &&
    typeof v === "object" &&
    (v.constructor?.name === "DataFrame" || v.constructor?.name === "Series") &&
    Array.isArray((v as FrameLike).values)
  );
}

function frameBundle(df: FrameLike): MimeBundle {
  const series = df.constructor?.name === "Series";
  const columns = series ? [String((df as unknown as { name?: string }).name ?? "value")] : df.columns;
  const rows = series ? (df.values as unknown[]).map((v) => [v]) : df.values;
  // not df.shape: danfo exposes columns as properties, so a column named "shape" hides it
  const records = rows.map((r) => Object.fromEntries(columns.map((c, i) => [c, r[i] as string | number | null])));
  return tableBundle("", columns, records);
}

function isRecordArray(v: unknown): v is Record<string, unknown>[] {
  return (
    Array.isArray(v) &&
    v.length > 0 &&
    v.length <= 5000 &&
    v.every(
      (r) => r !== null && typeof r === "object" && !Array.isArray(r) && Object.getPrototypeOf(r) === Object.prototype,
    )
  );
}

async function spec(v: Record<string, unknown>): Promise<MimeBundle> {
  const mark =
    typeof v.mark === "string"
      ? v.mark
      : ((v.mark as { type?: string } | undefined)?.type ?? (v.layer ? "layered" : "composite"));
  const title = typeof v.title === "string" ? v.title : (v.title as { text?: string } | undefined)?.text;
  return {
    [VEGA_LITE_MIME]: v,
    "image/svg+xml": await renderSvg(v),
    "text/plain": `<Vega-Lite ${mark} chart${title ? `: ${title}` : ""}>`,
  };
}

/** Values shown of a large tensor. */
const PREVIEW_VALUES = 1000;

/** Shape, dtype and the values (the first PREVIEW_VALUES of a large tensor, then a note). */
function tensorText(t: tf.Tensor): string {
  const head = `Tensor ${t.dtype} [${t.shape}]`;
  if (t.isDisposed) return `${head} (disposed)`;
  if (t.size <= PREVIEW_VALUES) return `${head}\n${t.toString().replace(/^Tensor\n/, "")}`;
  const values = Array.from(t.dataSync().subarray(0, 20), (v) => Number(v.toPrecision(6)));
  const stats = tf.tidy(() => [
    tf.min(t).dataSync()[0],
    tf.max(t).dataSync()[0],
    tf.mean(tf.cast(t, "float32")).dataSync()[0],
  ]);
  return `${head}, ${t.size} values: min ${stats[0]}, max ${stats[1]}, mean ${(stats[2] ?? 0).toPrecision(6)}\nfirst values: ${values.join(", ")} …`;
}

/** A small 2-D tensor as an HTML table too. */
function tensorBundle(t: tf.Tensor): MimeBundle {
  const text = tensorText(t);
  const [r, c] = t.shape as [number, number];
  if (t.isDisposed || t.rank !== 2 || r > 50 || c > 50) return { "text/plain": text };
  const rows = t.arraySync() as number[][];
  return {
    "text/html": htmlTable(
      Array.from({ length: c }, (_, j) => String(j)),
      rows,
      { caption: `Tensor ${t.dtype} [${t.shape}]` },
    ),
    "text/plain": text,
  };
}

/** The MIME bundle for a value, or null when there is nothing to show (null / undefined). */
export async function toMimeBundle(value: unknown): Promise<MimeBundle | null> {
  if (value === null || value === undefined) return null;
  if (isDisplayable(value)) {
    const b = await value[DISPLAY]();
    if (b === null || typeof b !== "object")
      throw errors.invalidArgument(
        "display",
        "a [Symbol.for('Jupyter.display')]() method returned no object",
        "return a MIME bundle, e.g. { 'text/plain': '...' }",
      );
    return b;
  }
  if (isFrame(value)) return frameBundle(value);
  if (isVegaLiteSpec(value)) return spec(value);
  if (value instanceof tf.Tensor) return tensorBundle(value);
  if (isRecordArray(value)) {
    const columns = [...new Set(value.flatMap((r) => Object.keys(r)))];
    return tableBundle("", columns, value as Record<string, string | number | null>[]);
  }
  // strings quoted, as Node's REPL shows them
  return { "text/plain": inspect(value, { depth: 4, maxArrayLength: 50, breakLength: 100 }) };
}
