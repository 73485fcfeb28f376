/**
 * QConfig: how one op is quantized — its inputs, its weight and its output. A qconfig holds
 * observer *factories*, never observer instances, so one qconfig can serve many ops.
 *
 * Every field is optional and merges field by field across the setters given to `prepare`:
 * the first setter that decides a field (a dtype or an observer of input, weight or output)
 * wins, later ones fill only what is still open. So
 * `[ModuleNameQconfigSetter({ linear2: getQconfig({ weightDtype: qint16 }) }), template]`
 * changes linear2's weight dtype and keeps everything else from the template.
 * `output: null` keeps the output in high precision (not quantized).
 */
import { isQuantDType, qint16, qint8, type QuantDType } from "./dtypes";
import { FixedScaleObserver } from "./observers/fixedScale";
import type { ObserverFactory } from "./observers/observer";
import { errors } from "../messages";

export interface FakeQuantSpec {
  dtype?: QuantDType | undefined;
  observer?: ObserverFactory | undefined;
}

export interface QConfig {
  /** Re-quantize every activation input of the op (in_dtype). */
  input?: FakeQuantSpec | null;
  /** Weight of Linear-like ops; per channel along axis 0. */
  weight?: FakeQuantSpec | null | undefined;
  /** The op's output; null = high precision. */
  output?: FakeQuantSpec | null;
}

type DTypeArg = QuantDType | "qint8" | "qint16";

export interface GetQconfigOptions {
  /** Observer of activations (input and output). */
  observer?: ObserverFactory;
  inDtype?: DTypeArg;
  weightDtype?: DTypeArg;
  /** Output dtype; null keeps the output in float. */
  outDtype?: DTypeArg | null;
  /** A fixed output scale, e.g. 7 / 32767; the output dtype defaults to qint16 with it. */
  fixScale?: number;
}

/**
 * Builds a qconfig from dtypes and an observer, deciding only the fields given.
 *
 * ```ts
 * qb.qconfig.getQconfig({ weightDtype: qb.qint16 });                       // linear2's weight in int16
 * qb.qconfig.getQconfig({ outDtype: qb.qint16, fixScale: 7 / 32767 });     // the article's mul output
 * ```
 */
export function getQconfig(opts: GetQconfigOptions = {}): QConfig {
  const known = new Set(["observer", "inDtype", "weightDtype", "outDtype", "fixScale"]);
  for (const k of Object.keys(opts)) {
    if (!known.has(k)) {
      throw errors.invalidArgument(`getQconfig`, `unknown option '${k}'`, `expected one of ${[...known].join(", ")}`);
    }
  }
  const dtype = (key: string, v: DTypeArg | undefined): QuantDType | undefined => {
    if (v === undefined) return undefined;
    if (v === "qint8" || v === qint8) return qint8;
    if (v === "qint16" || v === qint16) return qint16;
    throw errors.invalidArgument(
      "getQconfig",
      `${key} is ${isQuantDType(v) ? v.name : JSON.stringify(v)}`,
      `pass qb.qint8 or qb.qint16 as ${key}`,
    );
  };
  if (opts.observer !== undefined && (opts.observer === null || typeof opts.observer.create !== "function")) {
    throw errors.invalidArgument(
      "getQconfig",
      "observer is not an observer class",
      "pass a class such as qb.quant.MSEObserver or qb.quant.MinMaxObserver (the class, not an instance)",
    );
  }
  const inDtype = dtype("inDtype", opts.inDtype);
  const weightDtype = dtype("weightDtype", opts.weightDtype);
  const outDtype = opts.outDtype === null ? null : dtype("outDtype", opts.outDtype);
  const qc: QConfig = {};
  if (inDtype !== undefined) qc.input = { dtype: inDtype, observer: opts.observer };
  if (weightDtype !== undefined) qc.weight = { dtype: weightDtype };
  if (opts.fixScale !== undefined) {
    if (outDtype === null)
      throw errors.invalidArgument("getQconfig", "fixScale needs a quantized output", "drop outDtype: null");
    qc.output = { dtype: outDtype ?? qint16, observer: FixedScaleObserver.withScale(opts.fixScale) };
  } else if (outDtype === null) {
    qc.output = null;
  } else if (outDtype !== undefined || opts.observer !== undefined) {
    qc.output = { dtype: outDtype, observer: opts.observer };
  }
  return qc;
}

/** Fills the open fields of `into` from `from` (earlier setters win). */
export function mergeQconfig(into: QConfig, from: QConfig): QConfig {
  const out: QConfig = { ...into };
  for (const key of ["input", "weight", "output"] as const) {
    const have = into[key];
    const give = from[key];
    if (give === undefined || have === null) continue;
    if (have === undefined) {
      out[key] = give === null ? null : { ...give };
      continue;
    }
    if (give === null) continue;
    out[key] = { dtype: have.dtype ?? give.dtype, observer: have.observer ?? give.observer };
  }
  return out;
}
