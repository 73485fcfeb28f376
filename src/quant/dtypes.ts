/** Quantized integer dtypes: symmetric, zero point 0. */
import { errors } from "../messages";
export interface QuantDType {
  readonly name: "qint8" | "qint16" | "qint32";
  readonly bits: number;
  readonly qmin: number;
  readonly qmax: number;
}

function make(name: QuantDType["name"], bits: number): QuantDType {
  return Object.freeze({ name, bits, qmin: -(2 ** (bits - 1)), qmax: 2 ** (bits - 1) - 1 });
}

export const qint8 = make("qint8", 8);
export const qint16 = make("qint16", 16);
/** For biases and accumulators. */
export const qint32 = make("qint32", 32);

/** The dtype name of a tensor that is not quantized (high precision). */
export const FLOAT = "float32";
export type DTypeName = QuantDType["name"] | typeof FLOAT;

export function isQuantDType(x: unknown): x is QuantDType {
  return x === qint8 || x === qint16 || x === qint32;
}

export function dtypeByName(name: string): QuantDType {
  const found = [qint8, qint16, qint32].find((d) => d.name === name);
  if (found === undefined) throw errors.notOneOf("dtype", "quantized dtype", name, ["qint8", "qint16", "qint32"]);
  return found;
}
