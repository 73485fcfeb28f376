/**
 * KL (entropy) calibration, the reference toolchain's `kl` calibration type and TensorRT's
 * method: per batch, a histogram of |x| in 2048 bins; for each candidate threshold (bin 128 …
 * 2048) the distribution below it, with everything above folded into its last bin, is compared
 * with the same distribution squeezed into the dtype's 128 positive levels; the threshold of least
 * KL divergence clips the rare tail that would otherwise stretch the scale. Batches are smoothed
 * like every other observer's ranges.
 *
 * int16 has 32768 positive levels, more than the histogram's 2048 bins: no threshold below the
 * maximum can beat it, so a qint16 KL observer keeps the full range (as MinMax does).
 */
import * as tf from "@tensorflow/tfjs";
import { Observer, type ObserverOptions } from "./observer";

export const KL_BINS = 2048;

/** The KL-optimal clipping threshold of a histogram of |x| (`bins` over [0, absMax]) for `levels` positive levels. */
export function klThreshold(hist: Float64Array, absMax: number, levels: number): number {
  const nbins = hist.length;
  if (levels >= nbins || absMax === 0) return absMax;
  const width = absMax / nbins;
  const total = hist.reduce((a, b) => a + b, 0);
  let best = nbins;
  let bestKl = Infinity;
  const p = new Float64Array(nbins);
  const q = new Float64Array(nbins);
  let above = total;
  for (let i = 0; i < levels; i++) above -= hist[i];
  for (let i = levels; i <= nbins; i++) {
    // reference: the first i bins, the tail folded into the last
    for (let k = 0; k < i; k++) p[k] = hist[k];
    p[i - 1] += above;
    // candidate: the first i bins merged into `levels` groups, each spread over its non-empty bins
    const merged = i / levels;
    for (let j = 0; j < levels; j++) {
      const start = Math.floor(j * merged);
      const end = j === levels - 1 ? i : Math.floor((j + 1) * merged);
      let sum = 0;
      let nonzero = 0;
      for (let k = start; k < end; k++) {
        sum += hist[k];
        if (p[k] !== 0) nonzero++;
      }
      for (let k = start; k < end; k++) q[k] = p[k] !== 0 && nonzero > 0 ? sum / nonzero : 0;
    }
    let pSum = 0;
    let qSum = 0;
    for (let k = 0; k < i; k++) {
      pSum += p[k];
      qSum += q[k];
    }
    let kl = 0;
    if (pSum > 0 && qSum > 0) {
      for (let k = 0; k < i; k++) {
        if (p[k] === 0) continue;
        const pk = p[k] / pSum;
        // a bin the candidate leaves empty: a small floor instead of an infinite divergence
        const qk = Math.max(q[k] / qSum, 1e-12);
        kl += pk * Math.log(pk / qk);
      }
    }
    if (kl < bestKl) {
      bestKl = kl;
      best = i;
    }
    if (i < nbins) above -= hist[i];
  }
  return Math.min(absMax, (best + 0.5) * width);
}

export class KLObserver extends Observer {
  static readonly observerName = "KLObserver";

  constructor(opts: ObserverOptions) {
    super(opts);
  }

  static create(opts: ObserverOptions): Observer {
    return new KLObserver(opts);
  }

  protected batchRange(rows: tf.Tensor2D, min: Float64Array, max: Float64Array) {
    const [channels, n] = rows.shape;
    const data = rows.dataSync() as Float32Array;
    const levels = this.dtype.qmax + 1;
    const outMin = new Float64Array(channels);
    const outMax = new Float64Array(channels);
    const hist = new Float64Array(KL_BINS);
    for (let c = 0; c < channels; c++) {
      const absMax = Math.max(Math.abs(min[c]), Math.abs(max[c]));
      hist.fill(0);
      if (absMax > 0) {
        const k = KL_BINS / absMax;
        for (let i = c * n; i < (c + 1) * n; i++) hist[Math.min(KL_BINS - 1, Math.floor(Math.abs(data[i]) * k))]++;
      }
      const t = klThreshold(hist, absMax, levels);
      outMin[c] = Math.max(min[c], -t);
      outMax[c] = Math.min(max[c], t);
    }
    return { min: outMin, max: outMax };
  }
}
