import * as tf from "@tensorflow/tfjs";
import { Observer, type ObserverFactory, type ObserverOptions } from "./observer";
import { errors } from "../../messages";

/** Linear-interpolated quantile of sorted values, as torch.quantile does. */
function quantile(sorted: Float32Array, q: number): number {
  const pos = q * (sorted.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.min(lo + 1, sorted.length - 1);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

/**
 * Range = the `percentile`-th and `(100 - percentile)`-th percentiles of the batch, so rare
 * outliers do not stretch the scale. Default percentile 99.99.
 */
export class PercentileObserver extends Observer {
  static readonly observerName = "PercentileObserver";
  readonly percentile: number;

  constructor(opts: ObserverOptions & { percentile?: number }) {
    super(opts);
    this.percentile = opts.percentile ?? 99.99;
    if (!(this.percentile > 50 && this.percentile <= 100)) {
      throw errors.outOfRange("PercentileObserver", "percentile", this.percentile, "in (50, 100], e.g. 99.99");
    }
  }

  static create(opts: ObserverOptions): Observer {
    return new PercentileObserver(opts);
  }

  /** A factory with a given percentile: `PercentileObserver.withPercentile(99.9)`. */
  static withPercentile(percentile: number): ObserverFactory {
    return {
      observerName: `PercentileObserver(${percentile})`,
      create: (opts) => new PercentileObserver({ ...opts, percentile }),
    };
  }

  protected batchRange(rows: tf.Tensor2D) {
    const [channels, n] = rows.shape;
    const data = rows.dataSync() as Float32Array;
    const min = new Float64Array(channels);
    const max = new Float64Array(channels);
    const p = this.percentile / 100;
    for (let c = 0; c < channels; c++) {
      const sorted = data.slice(c * n, (c + 1) * n).sort();
      min[c] = quantile(sorted, 1 - p);
      max[c] = quantile(sorted, p);
    }
    return { min, max };
  }
}
