import type { QuantDType } from "./dtypes";

/** float32 machine epsilon: the smallest scale quantbook produces from a range. */
export const FLOAT32_EPS = 1.1920928955078125e-7;

/**
 * Symmetric scale covering [min, max]: `max(-min, max) / ((qmax - qmin) / 2)`, at least eps.
 * The range is widened to include 0 first, as the reference toolchain does.
 */
export function scaleFromRange(min: number, max: number, dtype: QuantDType): number {
  const lo = Math.min(min, 0);
  const hi = Math.max(max, 0);
  return Math.max(Math.max(-lo, hi) / ((dtype.qmax - dtype.qmin) / 2), FLOAT32_EPS);
}
