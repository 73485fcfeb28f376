/**
 * Rich display: turns a value into a Jupyter MIME bundle. The only place that knows MIME types.
 *
 * - a value with a `[Symbol.for("Jupyter.display")]()` method: the bundle it returns (the
 *   convention of Deno's kernel);
 * - danfo DataFrames / Series: an escaped HTML table (shape, head and tail rows) plus text;
 * - Vega-Lite specs: the spec as `application/vnd.vegalite.v5+json`, an SVG rendered in Node,
 *   and text — in one bundle;
 * - quantbook results (sensitivity and statistics tables, chip checks, perf reports): tables
 *   with a caption;
 * - arrays of records: a table; tensors and modules: a text summary; anything else: inspect().
 */
import * as tf from "@tensorflow/tfjs";
import { inspect } from "node:util";
import { escapeHtml, htmlTable, textTable } from "./html";
import { isVegaLiteSpec, renderSvg, VEGA_LITE_MIME } from "./vega";
import { errors } from "../messages";

export type MimeBundle = Record<string, unknown>;

export const DISPLAY_SYMBOL = Symbol.for("Jupyter.display");

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

function frameBundle(df: FrameLike, caption?: string): MimeBundle {
  const series = df.constructor?.name === "Series";
  const columns = series ? [String((df as unknown as { name?: string }).name ?? "value")] : df.columns;
  const rows = series ? (df.values as unknown[]).map((v) => [v]) : df.values;
  // not df.shape: danfo exposes columns as properties, so a column named "shape" hides it
  const shape = `${rows.length} rows × ${columns.length} columns`;
  const cap = caption ? `${caption} (${shape})` : shape;
  return {
    "text/html": htmlTable(columns, rows, { caption: cap, index: df.index }),
    "text/plain": `${cap}\n${textTable(columns, rows)}`,
  };
}

function recordsBundle(rows: Record<string, unknown>[], caption?: string): MimeBundle {
  const columns = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  const values = rows.map((r) => columns.map((c) => r[c]));
  const cap = `${caption ? `${caption} ` : ""}(${rows.length} rows)`;
  return {
    "text/html": htmlTable(columns, values, { caption: cap }),
    "text/plain": `${cap}\n${textTable(columns, values)}`,
  };
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

function isTable(v: Record<string, unknown>): boolean {
  return typeof v.toDataFrame === "function";
}

function tableBundle(v: Record<string, unknown>, caption: string | undefined): MimeBundle {
  // a quantbook result draws itself from its records (no DataFrame library to load: the same table, faster)
  if (typeof v.toRecords === "function" && Array.isArray(v.columns)) {
    const columns = v.columns as string[];
    const records = (v.toRecords as () => Record<string, unknown>[])();
    if (records.length === 0)
      return { "text/html": `<p>${escapeHtml(caption ?? "empty table")}</p>`, "text/plain": caption ?? "empty table" };
    const values = records.map((r) => columns.map((c) => r[c] ?? null));
    return frameBundle(
      {
        columns,
        values,
        index: values.map((_, i) => i),
        shape: [values.length, columns.length],
      } as unknown as FrameLike,
      caption,
    );
  }
  const df = (v.toDataFrame as () => FrameLike)();
  if (df.values.length === 0)
    return { "text/html": `<p>${escapeHtml(caption ?? "empty table")}</p>`, "text/plain": caption ?? "empty table" };
  return frameBundle(df, caption);
}

/** The caption of a quantbook result (every tool's result carries one), or undefined for other values. */
function resultCaption(v: Record<string, unknown>): string | undefined {
  return typeof v.caption === "string" ? v.caption : undefined;
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

/** A model's module tree: each module with its class, parameter count and (prepared models) op count. */
function moduleTree(m: Record<string, unknown>): string {
  const modules = (m.namedModules as () => [string, Record<string, unknown>][])();
  const params = (m.namedParameters as () => [string, tf.Tensor][])();
  // the model says what it has run through the quantization runtime (display never reaches into it)
  const prepared =
    typeof m.preparedOpCounts === "function" ? (m.preparedOpCounts as () => Map<string, number> | null)() : null;
  const ops = prepared ?? new Map<string, number>();
  const opTotal = [...ops.values()].reduce((a, b) => a + b, 0);
  const total = params.reduce((a, [, p]) => a + p.size, 0);
  const lines = modules.slice(0, 200).map(([path, mod]) => {
    const depth = path === "" ? 0 : path.split(".").length;
    const own = params.filter(([n]) => n.slice(0, n.lastIndexOf(".")) === path || (path === "" && !n.includes(".")));
    const count = own.reduce((a, [, p]) => a + p.size, 0);
    const opCount = ops.get(path);
    return `${"  ".repeat(depth)}${path === "" ? "(root)" : path.split(".").pop()}: ${mod.constructor.name}${count ? `, ${count} parameters` : ""}${opCount ? `, ${opCount} op${opCount === 1 ? "" : "s"}` : ""}`;
  });
  const more = modules.length > 200 ? `\n… ${modules.length - 200} more modules` : "";
  return `${m.constructor.name}: ${modules.length} modules, ${params.length} parameter tensors (${total} values)${prepared ? `, ${opTotal} quantized ops (prepared)` : ""}\n${lines.join("\n")}${more}`;
}

/** The MIME bundle for a value, or null when there is nothing to show (null / undefined). */
export async function toMimeBundle(value: unknown): Promise<MimeBundle | null> {
  if (value === null || value === undefined) return null;
  const custom = (value as Record<symbol, unknown>)[DISPLAY_SYMBOL];
  if (typeof custom === "function") {
    const b = await (custom as () => MimeBundle | Promise<MimeBundle>).call(value);
    if (b === null || typeof b !== "object")
      throw errors.coded(
        "INVALID_ARGUMENT",
        "a [Symbol.for('Jupyter.display')]() method must return a MIME bundle object, e.g. { 'text/plain': '...' }",
      );
    return b;
  }
  if (isFrame(value)) return frameBundle(value);
  if (isVegaLiteSpec(value)) return spec(value);
  if (value instanceof tf.Tensor) return tensorBundle(value);
  if (typeof value === "object" && !Array.isArray(value)) {
    const v = value as Record<string, unknown>;
    const caption = resultCaption(v);
    if (isTable(v)) return tableBundle(v, caption);
    // several results in one object (statistics: baseline and analysis): each in turn
    const parts = Object.entries(v).filter(
      ([, p]) => p !== null && typeof p === "object" && isTable(p as Record<string, unknown>),
    );
    if (parts.length > 0 && parts.length === Object.keys(v).length) {
      const bundles = parts.map(
        ([k, p]) =>
          [k, tableBundle(p as Record<string, unknown>, resultCaption(p as Record<string, unknown>) ?? k)] as const,
      );
      return {
        "text/html": bundles.map(([k, b]) => `<h4>${escapeHtml(k)}</h4>${String(b["text/html"])}`).join("\n"),
        "text/plain": bundles.map(([k, b]) => `${k}:\n${String(b["text/plain"])}`).join("\n\n"),
      };
    }
    // a quantbook report with a text form (chip check report, integer model)
    if (typeof v.text === "string") {
      const plain = caption ? `${caption}\n${v.text}` : v.text;
      return {
        "text/html": `${caption ? `<p>${escapeHtml(caption)}</p>` : ""}<pre>${escapeHtml(v.text)}</pre>`,
        "text/plain": plain,
      };
    }
    if (
      typeof v.namedParameters === "function" &&
      typeof v.forward === "function" &&
      typeof v.namedModules === "function"
    ) {
      return { "text/plain": moduleTree(v) };
    }
  }
  if (isRecordArray(value)) return recordsBundle(value);
  // strings quoted, as Node's REPL shows them
  return { "text/plain": inspect(value, { depth: 4, maxArrayLength: 50, breakLength: 100 }) };
}
