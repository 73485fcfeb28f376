/**
 * Fixed-point requantization, as integer hardware does it: a real ratio r (e.g. s_in·s_w / s_out)
 * becomes an integer multiplier M in [2^23, 2^24) and a right shift, so that r ≈ M / 2^shift with
 * relative error at most 2^-24 (≈ 6e-8, a few thousandths of an int16 step at full range; a
 * 16-bit multiplier would be off by up to one int16 step). Products acc·M are exact while
 * |acc| < 2^29 (float64 holds integers below 2^53); larger accumulators lose only float64
 * rounding (relative 1e-16). Rounding after the shift is half up (the BPU's rounding).
 */
import { errors } from "../../messages";

/** Bits of the requantization multiplier. */
export const MULTIPLIER_BITS = 24;

export interface Multiplier {
  m: number;
  shift: number;
}

export function multiplier(r: number): Multiplier {
  if (!(r > 0) || !Number.isFinite(r))
    throw errors.invalidArgument(
      "requantization",
      `ratio ${r}`,
      "every scale must be a finite number > 0: recalibrate the op whose scale is 0 or not finite",
    );
  let shift = MULTIPLIER_BITS - 1 - Math.floor(Math.log2(r));
  let m = Math.round(r * 2 ** shift);
  if (m >= 2 ** MULTIPLIER_BITS) {
    m = Math.round(m / 2);
    shift -= 1;
  }
  return { m, shift };
}

/** 2^k for integer k in [-1074, 1023], from a table (Math.pow per element is the integer model's hot spot). */
const POW2 = new Float64Array(2200).map((_, i) => 2 ** (i - 1100));
const pow2 = (k: number) => POW2[k + 1100];

/**
 * round(v / 2^shift), half up, for an integer v held exactly in a float64. Adding 2^(shift−1) and
 * multiplying by 2^−shift are exact (powers of two), so this is the integer result bit for bit.
 */
export function roundShift(v: number, shift: number): number {
  if (shift <= 0) return v * pow2(-shift);
  return Math.floor((v + pow2(shift - 1)) * pow2(-shift));
}

/** Round half to even (PyTorch's and the fake-quantizer's rounding). */
export function roundHalfEven(v: number): number {
  const r = Math.round(v);
  return r - v === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

export function clamp(v: number, lo: number, hi: number): number {
  return v < lo ? lo : v > hi ? hi : v;
}

/** q · r requantized, r = sign · M / 2^shift: round(sign·q·M / 2^shift), saturated to [lo, hi]. */
export function requant(q: number, mul: Multiplier, sign: number, lo: number, hi: number): number {
  return clamp(roundShift(sign * q * mul.m, mul.shift), lo, hi);
}
