import * as tf from "@tensorflow/tfjs";
import { Observer, type ObserverOptions } from "./observer";

/** Range = the batch's min and max (per tensor or per channel). */
export class MinMaxObserver extends Observer {
  static readonly observerName = "MinMaxObserver";
  static create(opts: ObserverOptions): Observer {
    return new MinMaxObserver(opts);
  }
  override rangeFromExtremes(min: Float64Array, max: Float64Array) {
    return { min, max };
  }
  protected batchRange(_rows: tf.Tensor2D, min: Float64Array, max: Float64Array) {
    return { min, max };
  }
}
