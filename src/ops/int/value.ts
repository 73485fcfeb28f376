import type { IrQuant } from "../../ir/types";
import { dtypeByName } from "../../quant/dtypes";
import { clamp, multiplier, requant } from "./fixedPoint";
import { errors } from "../../messages";

/** A tensor in the integer model: integer codes when quantized, real values when float32. */
export interface Value {
  data: Float64Array;
  shape: number[];
  quant: IrQuant;
}

export function isFloat(q: IrQuant): boolean {
  return q.dtype === "float32";
}

export function rangeOf(q: IrQuant): [number, number] {
  const d = dtypeByName(q.dtype);
  return [d.qmin, d.qmax];
}

/** The single scale of a per-tensor quantized value. */
export function tensorScale(q: IrQuant, where: string): number {
  if (q.scale === null || q.scale.length !== 1)
    throw errors.needsQuantized(
      where,
      `an input with one scale (per tensor) is needed, got ${q.dtype} with ${q.scale?.length ?? 0} scales`,
    );
  return q.scale[0];
}

/** Real values of a value (codes × scale, or the floats themselves). */
export function toReal(v: Value): Float64Array {
  if (isFloat(v.quant)) return v.data;
  const s = Math.fround(tensorScale(v.quant, "dequantize"));
  return v.data.map((q) => Math.fround(q * s));
}

/** Re-expresses integer codes at another per-tensor scale/dtype (fixed-point multiply, saturating). */
export function requantize(v: Value, to: IrQuant, where: string): Value {
  if (isFloat(to)) return { data: toReal(v), shape: v.shape, quant: to };
  if (isFloat(v.quant))
    throw errors.invalidArgument(`${where}`, `cannot requantize a float value`, `quantize it first`);
  const from = tensorScale(v.quant, where);
  const target = tensorScale(to, where);
  const [lo, hi] = rangeOf(to);
  const mul = multiplier(from / target);
  const data = from === target ? v.data.map((q) => clamp(q, lo, hi)) : v.data.map((q) => requant(q, mul, 1, lo, hi));
  return { data, shape: v.shape, quant: to };
}
