/**
 * Fake quantization: `clamp(round(x * (1 / scale)), qmin, qmax) * scale`, zero point 0.
 *
 * Matches `torch.fake_quantize_per_tensor_affine` / `_per_channel_affine` bit for bit: the
 * inverse scale is computed in float32 and multiplied (as PyTorch's kernels do), rounding is
 * half to even. `roundMode: "bpu"` rounds as the BPU does, `floor(x / scale + 0.5)`.
 * The gradient is straight-through inside [qmin, qmax] and zero outside (for QAT).
 *
 * ```ts
 * const y = qb.quant.fakeQuantize(x, { scale: 7 / 32767, dtype: qb.qint16 });
 * const w = qb.quant.fakeQuantize(weight, { scale: perRowScales, dtype: qb.qint8, axis: 0 });
 * ```
 */
import * as tf from "@tensorflow/tfjs";
import { fusedFakeQuantize } from "../wasm/fusedFakeQuant";
import type { QuantDType } from "./dtypes";
import { errors } from "../messages";

export type RoundMode = "half_even" | "bpu";

export interface FakeQuantizeOptions {
  /** A number (per tensor) or one scale per channel along `axis`. */
  scale: number | ArrayLike<number> | tf.Tensor1D;
  dtype: QuantDType;
  /** Channel axis for per-channel scales (negative counts from the end). */
  axis?: number | undefined;
  roundMode?: RoundMode | undefined;
}

function checkScales(values: ArrayLike<number>, where: string): void {
  for (let i = 0; i < values.length; i++) {
    const s = values[i];
    if (!(s > 0) || !Number.isFinite(s)) {
      throw errors.invalidArgument(
        `${where}`,
        `scale[${i}] is ${s}`,
        `every scale must be a finite number > 0 (calibrate the op or give a fixed scale)`,
      );
    }
  }
}

/** Scale (and its float32 inverse) shaped to broadcast against `x`. */
function scaleTensors(x: tf.Tensor, opts: FakeQuantizeOptions): [tf.Tensor, tf.Tensor] {
  const { scale } = opts;
  if (typeof scale === "number") {
    checkScales([scale], "fakeQuantize");
    const s = tf.scalar(scale, "float32");
    return [s, tf.div(1, s)];
  }
  const rank = x.rank;
  const axis = opts.axis ?? 0;
  const ax = axis < 0 ? axis + rank : axis;
  if (ax < 0 || ax >= rank) {
    throw errors.badAxis("fakeQuantize", "axis", axis, x.shape);
  }
  const values = scale instanceof tf.Tensor ? (scale.dataSync() as Float32Array) : Float32Array.from(scale);
  if (values.length !== x.shape[ax]) {
    throw errors.shapeMismatch(
      `fakeQuantize`,
      `${values.length} per-channel scales for axis ${ax} of shape [${x.shape}]`,
      `${x.shape[ax]} (one per channel)`,
    );
  }
  checkScales(values, "fakeQuantize");
  const bshape = x.shape.map((d, i) => (i === ax ? d : 1));
  const s = tf.tensor(values, bshape, "float32");
  return [s, tf.div(1, s)];
}

function quantizeRaw(x: tf.Tensor, s: tf.Tensor, inv: tf.Tensor, mode: RoundMode): tf.Tensor {
  return mode === "bpu" ? tf.floor(tf.add(tf.div(x, s), 0.5)) : tf.round(tf.mul(x, inv));
}

/** float32 `1 / scale`, as PyTorch's kernels compute the inverse scale. */
export function inverseScale(scale: number): number {
  return Math.fround(1 / Math.fround(scale));
}

/** Fake-quantizes `x` (float32). Disposes everything it creates but the result. */
export function fakeQuantize(x: tf.Tensor, opts: FakeQuantizeOptions): tf.Tensor {
  if (x.dtype !== "float32") {
    throw errors.invalidArgument(
      `fakeQuantize`,
      `expected a float32 tensor, got ${x.dtype}`,
      `cast it with x.toFloat()`,
    );
  }
  const { qmin, qmax } = opts.dtype;
  const mode = opts.roundMode ?? "half_even";
  // per tensor, half-to-even: one fused pass on the wasm backend (same float32 arithmetic)
  const fused = typeof opts.scale === "number" && mode === "half_even";
  return tf.tidy(() => {
    if (fused) checkScales([opts.scale as number], "fakeQuantize");
    // the tfjs-op path; the fused path needs no scale tensors
    const viaOps = (input: tf.Tensor) => {
      const [s, inv] = scaleTensors(input, opts);
      return tf.mul(tf.clipByValue(quantizeRaw(input, s, inv, mode), qmin, qmax), s);
    };
    const f = tf.customGrad(((input: tf.Tensor, save: tf.GradSaveFunc) => {
      save([input]);
      const scale = opts.scale as number;
      const value = (fused ? fusedFakeQuantize(input, scale, inverseScale(scale), qmin, qmax) : null) ?? viaOps(input);
      return {
        value,
        gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
          const [s, inv] = scaleTensors(saved[0], opts);
          const q = quantizeRaw(saved[0], s, inv, mode);
          const inside = tf.logicalAnd(tf.greaterEqual(q, qmin), tf.lessEqual(q, qmax));
          return tf.mul(dy, tf.cast(inside, "float32"));
        },
      };
    }) as unknown as Parameters<typeof tf.customGrad>[0]);
    return f(x);
  });
}

/** The integer codes `clamp(round(x / scale), qmin, qmax)` as an int32 tensor. */
export function quantizeToInt(x: tf.Tensor, opts: FakeQuantizeOptions): tf.Tensor {
  const { qmin, qmax } = opts.dtype;
  return tf.tidy(() => {
    const [s, inv] = scaleTensors(x, opts);
    return tf.cast(tf.clipByValue(quantizeRaw(x, s, inv, opts.roundMode ?? "half_even"), qmin, qmax), "int32");
  });
}
