/**
 * Exact integer matrix products on the tensor backend's float32 GEMM.
 *
 * A float32 sum of integer products is exact while every partial sum stays below 2^24, whatever
 * order the backend adds in. So codes are split into base-256 digits when their products would
 * be too large (an int16 code is `hi · 256 + lo`, lo in [0, 255]) and the shared dimension is cut
 * into chunks short enough that |digit_a| · |digit_b| · chunk < 2^24; each chunk's product is
 * exact, and the chunks and digits are summed in float64 (exact below 2^53). The result equals
 * the schoolbook integer sum bit for bit, at the backend's GEMM speed.
 */
import * as tf from "@tensorflow/tfjs";

const EXACT = 2 ** 24;

/** Splits integer codes into base-256 digits (least significant first) when they exceed `limit` in magnitude. */
function digits(data: Float32Array, maxAbs: number): { parts: Float32Array[]; bound: number } {
  if (maxAbs <= 255) return { parts: [data], bound: Math.max(maxAbs, 1) };
  const lo = new Float32Array(data.length);
  const hi = new Float32Array(data.length);
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    const l = ((v % 256) + 256) % 256;
    lo[i] = l;
    hi[i] = (v - l) / 256;
  }
  // codes up to 32767: hi in [-128, 127]
  return { parts: [lo, hi], bound: 255 };
}

function maxAbsOf(data: Float32Array): number {
  let m = 0;
  for (let i = 0; i < data.length; i++) {
    const v = Math.abs(data[i]);
    if (v > m) m = v;
  }
  return m;
}

/** A right operand ([k, n] codes) split into digits, for products with left codes up to some bound (plain arrays: no tensors kept). */
export interface PreparedRight {
  k: number;
  n: number;
  /** per digit: the [k, n] codes of that digit */
  parts: Float32Array[];
  bound: number;
  /** rows of k per exact product */
  chunk: number;
}

/** `b` ([k, n], row-major integer codes) split and chunked for products with left codes up to `leftMaxAbs`. */
export function prepareRight(b: Float32Array, k: number, n: number, leftMaxAbs: number): PreparedRight {
  const right = digits(b, maxAbsOf(b));
  const leftBound = leftMaxAbs <= 255 ? Math.max(leftMaxAbs, 1) : 255;
  const chunk = Math.max(1, Math.min(k, Math.floor((EXACT - 1) / (leftBound * right.bound))));
  return { k, n, parts: right.parts, bound: right.bound, chunk };
}

/**
 * The exact product of `a` ([m, k] integer codes, |a| within the bound `right` was prepared for)
 * and `right`, as float64 [m, n]. Every tensor it makes is disposed before it returns.
 */
export function exactMatMul(a: Float32Array, m: number, right: PreparedRight, leftMaxAbs?: number): Float64Array {
  const { k, n, chunk } = right;
  // a bound known from the dtype (int8) saves the scan
  const left = digits(a, leftMaxAbs !== undefined && leftMaxAbs <= 255 ? leftMaxAbs : maxAbsOf(a));
  const out = new Float64Array(m * n);
  for (const [da, pa] of left.parts.entries()) {
    const at = tf.tensor2d(pa, [m, k]);
    try {
      for (const [db, pb] of right.parts.entries()) {
        const scale = 256 ** (da + db);
        for (let k0 = 0; k0 < k; k0 += chunk) {
          const kc = Math.min(k, k0 + chunk) - k0;
          const p = tf.tidy(() =>
            tf.matMul(
              kc === k ? at : tf.slice(at, [0, k0], [m, kc]),
              tf.tensor2d(pb.subarray(k0 * n, (k0 + kc) * n), [kc, n]),
            ),
          );
          const v = p.dataSync();
          p.dispose();
          for (let i = 0; i < v.length; i++) out[i] += scale * v[i];
        }
      }
    } finally {
      at.dispose();
    }
  }
  return out;
}
