/**
 * Observers watch the values a tensor takes during calibration (and QAT) and turn them into a
 * scale. Ranges are smoothed across batches with an exponential moving average: the first batch
 * sets the range, each later batch moves it by `averagingConstant` (0.01) towards its own.
 */
import * as tf from "@tensorflow/tfjs";
import type { QuantDType } from "../dtypes";
import { scaleFromRange } from "../scale";
import { withScope } from "../../util/scope";
import { errors, QuantbookError } from "../../messages";

export interface ObserverOptions {
  dtype: QuantDType;
  /** Channel axis for per-channel observation; undefined means per tensor. */
  axis?: number | undefined;
  /** Moving-average constant across batches (default 0.01). */
  averagingConstant?: number;
}

export interface ObserverSnapshot {
  min: Float64Array | null;
  max: Float64Array | null;
  batches: number;
}

/** Raised when a batch holds NaN (or only ±Inf); the fake-quantizer adds the op name. */
export class NonFiniteError extends QuantbookError {
  constructor(message: string) {
    super("INVALID_ARGUMENT", message);
    this.name = "NonFiniteError";
  }
}

/** A batch as rows: [channels, elements per channel] (one row when per tensor). */
export function asRows(x: tf.Tensor, axis: number | undefined): tf.Tensor2D {
  if (axis === undefined) return tf.reshape(x, [1, -1]);
  const ax = axis < 0 ? axis + x.rank : axis;
  if (ax < 0 || ax >= x.rank) {
    throw errors.badAxis("observer", "channel axis", axis, x.shape);
  }
  const perm = [ax, ...x.shape.map((_, i) => i).filter((i) => i !== ax)];
  return tf.reshape(tf.transpose(x, perm), [x.shape[ax], -1]);
}

export abstract class Observer {
  readonly dtype: QuantDType;
  readonly axis: number | undefined;
  readonly averagingConstant: number;
  protected min: Float64Array | null = null;
  protected max: Float64Array | null = null;
  /** Batches seen so far. */
  batches = 0;

  constructor(opts: ObserverOptions) {
    this.dtype = opts.dtype;
    this.axis = opts.axis;
    this.averagingConstant = opts.averagingConstant ?? 0.01;
  }

  /**
   * The range this batch asks for, one entry per channel (one in all when per tensor), given
   * the batch's own min and max per channel.
   */
  protected abstract batchRange(
    rows: tf.Tensor2D,
    min: Float64Array,
    max: Float64Array,
  ): { min: Float64Array; max: Float64Array };

  /**
   * Updates the smoothed range from one batch. ±Infinity (a −∞ attention mask) saturates: the
   * range is that of the finite values, and infinite ones count as its ends. Throws
   * NonFiniteError on NaN, or on a channel with no finite value.
   */
  observe(x: tf.Tensor): void {
    this.accumulate(this.measure(x));
  }

  /** The range one batch asks for (per channel), without updating the observer. */
  measure(x: tf.Tensor): { min: Float64Array; max: Float64Array } {
    return withScope(() => {
      let rows = asRows(x, this.axis);
      let [mn, mx] = [Float64Array.from(tf.min(rows, 1).dataSync()), Float64Array.from(tf.max(rows, 1).dataSync())];
      if (!mn.every(Number.isFinite) || !mx.every(Number.isFinite)) {
        if (tf.any(tf.isNaN(rows)).dataSync()[0])
          throw new NonFiniteError(`values are NaN (min ${Math.min(...mn)}, max ${Math.max(...mx)})`);
        const finite = tf.isFinite(rows);
        mn = Float64Array.from(tf.min(tf.where(finite, rows, tf.fill(rows.shape, Infinity)), 1).dataSync());
        mx = Float64Array.from(tf.max(tf.where(finite, rows, tf.fill(rows.shape, -Infinity)), 1).dataSync());
        if (!mn.every(Number.isFinite) || !mx.every(Number.isFinite))
          throw new NonFiniteError("values are all ±Inf: no finite value to take a range from");
        rows = tf.minimum(
          tf.maximum(rows, tf.tensor(Float32Array.from(mn), [mn.length, 1])),
          tf.tensor(Float32Array.from(mx), [mx.length, 1]),
        ) as tf.Tensor2D;
      }
      return this.batchRange(rows, mn, mx);
    });
  }

  /**
   * The batch range of finite per-channel extremes alone, when the observer's range is just those
   * (MinMax): lets an engine that reduces in the graph skip fetching the tensor. null: it needs the data.
   */
  rangeFromExtremes(min: Float64Array, max: Float64Array): { min: Float64Array; max: Float64Array } | null {
    void min;
    void max;
    return null;
  }

  /** Moves the smoothed range by one batch's range (the first batch sets it). */
  accumulate(r: { min: Float64Array; max: Float64Array }): void {
    if (this.min === null || this.max === null) {
      this.min = r.min.slice();
      this.max = r.max.slice();
    } else {
      const c = this.averagingConstant;
      for (let i = 0; i < r.min.length; i++) {
        this.min[i] += c * (r.min[i] - this.min[i]);
        this.max[i] += c * (r.max[i] - this.max[i]);
      }
    }
    this.batches++;
  }

  /** Smoothed range, or null before the first batch. */
  range(): { min: Float64Array; max: Float64Array } | null {
    return this.min === null || this.max === null ? null : { min: this.min, max: this.max };
  }

  /** The scale(s) from the smoothed range, or null when no batch was seen. */
  scale(): Float64Array | null {
    const r = this.range();
    if (r === null) return null;
    return r.min.map((mn, i) => scaleFromRange(mn, r.max[i], this.dtype));
  }

  snapshot(): ObserverSnapshot {
    return { min: this.min && this.min.slice(), max: this.max && this.max.slice(), batches: this.batches };
  }

  restore(s: ObserverSnapshot): void {
    this.min = s.min && s.min.slice();
    this.max = s.max && s.max.slice();
    this.batches = s.batches;
  }

  /** Short description for tables, e.g. "MSEObserver(qint16)". */
  describe(): string {
    return `${this.constructor.name}(${this.dtype.name}${this.axis === undefined ? "" : `, axis ${this.axis}`})`;
  }
}

/** What a qconfig holds: a way to make an observer, never an observer instance. */
export interface ObserverFactory {
  create(opts: ObserverOptions): Observer;
  readonly observerName: string;
}
