import * as tf from "@tensorflow/tfjs";
import { fusedKernelsAvailable, fusedQuantError } from "../../wasm/fusedFakeQuant";
import { inverseScale } from "../fakeQuantize";
import { scaleFromRange } from "../scale";
import { Observer, type ObserverOptions } from "./observer";

/** Number of candidate ranges the MSE observer tries per batch. */
export const MSE_CANDIDATES = 95;

/**
 * Range minimising the L2 error of the fake-quantized batch. Candidates are the batch's
 * min/max shrunk by `1 - 0.01 * i`, i = 0..94; on equal error the larger shrink wins. Per
 * channel, each channel picks its own shrink. The chosen range then enters the moving average.
 */
export class MSEObserver extends Observer {
  static readonly observerName = "MSEObserver";
  static create(opts: ObserverOptions): Observer {
    return new MSEObserver(opts);
  }
  /** The shrink index chosen per channel in the last batch (for the scale explorer). */
  lastPick: Int32Array = new Int32Array(0);

  protected batchRange(rows: tf.Tensor2D, mn: Float64Array, mx: Float64Array) {
    const channels = mn.length;
    const best = new Float64Array(channels).fill(Infinity);
    const pick = new Int32Array(channels);
    for (let i = 0; i < MSE_CANDIDATES; i++) {
      const f = 1 - 0.01 * i;
      const scales = new Float32Array(channels);
      for (let c = 0; c < channels; c++) scales[c] = scaleFromRange(mn[c] * f, mx[c] * f, this.dtype);
      const err = this.errors(rows, scales);
      for (let c = 0; c < channels; c++) {
        if (err[c] <= best[c]) {
          best[c] = err[c];
          pick[c] = i;
        }
      }
    }
    this.lastPick = pick;
    return {
      min: mn.map((v, c) => v * (1 - 0.01 * pick[c])),
      max: mx.map((v, c) => v * (1 - 0.01 * pick[c])),
    };
  }

  /** Σ (fq(row) - row)² per row for the given per-row scales. */
  private errors(rows: tf.Tensor2D, scales: Float32Array): ArrayLike<number> {
    const [channels, n] = rows.shape;
    const { qmin, qmax } = this.dtype;
    if (fusedKernelsAvailable()) {
      return Float64Array.from(
        scales,
        (s, c) => fusedQuantError(rows, s, inverseScale(s), qmin, qmax, c * n, n) as number,
      );
    }
    return tf.tidy(() => {
      const s = tf.tensor2d(scales, [channels, 1]);
      const q = tf.clipByValue(tf.round(tf.mul(rows, tf.div(1, s))), qmin, qmax);
      return tf.sum(tf.square(tf.sub(tf.mul(q, s), rows)), 1).dataSync();
    });
  }
}
