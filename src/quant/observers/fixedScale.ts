import * as tf from "@tensorflow/tfjs";
import { Observer, type ObserverFactory, type ObserverOptions } from "./observer";
import { errors } from "../../messages";

/**
 * A scale given by the user (the article gives a mul output 7/32767 in int16). It still
 * records the range it sees, for statistics, but the range never changes the scale.
 */
export class FixedScaleObserver extends Observer {
  static readonly observerName = "FixedScaleObserver";
  readonly fixedScale: number;

  constructor(opts: ObserverOptions & { scale: number }) {
    super(opts);
    if (!(opts.scale > 0) || !Number.isFinite(opts.scale)) {
      throw errors.outOfRange("FixedScaleObserver", "scale", opts.scale, "a finite number > 0, e.g. 7 / 32767");
    }
    this.fixedScale = opts.scale;
  }

  /** A factory for a fixed scale: `FixedScaleObserver.withScale(7 / 32767)`. */
  static withScale(scale: number): ObserverFactory {
    return {
      observerName: `FixedScaleObserver(${scale})`,
      create: (opts: ObserverOptions) => new FixedScaleObserver({ ...opts, scale }),
    };
  }

  static create(opts: ObserverOptions & { scale?: number }): Observer {
    if (opts.scale === undefined) {
      throw errors.invalidArgument(
        "FixedScaleObserver",
        "no scale given",
        "use FixedScaleObserver.withScale(s) or getQconfig({ fixScale: s })",
      );
    }
    return new FixedScaleObserver({ ...opts, scale: opts.scale });
  }

  override rangeFromExtremes(min: Float64Array, max: Float64Array) {
    return { min, max };
  }

  protected batchRange(_rows: tf.Tensor2D, min: Float64Array, max: Float64Array) {
    return { min, max };
  }

  override scale(): Float64Array {
    const channels = this.range()?.min.length ?? 1;
    return new Float64Array(channels).fill(this.fixedScale);
  }
}
