import * as tf from "@tensorflow/tfjs";
import { Observer, type ObserverOptions } from "./observer";

/** Range = the batch's min and max (per tensor or per channel). */
export class MinMaxObserver extends Observer {
  static readonly observerName = "MinMaxObserver";
  static create(opts: ObserverOptions): Observer {
    return new MinMaxObserver(opts);
  }
  protected batchRange(rows: tf.Tensor2D) {
    return { min: Float64Array.from(tf.min(rows, 1).dataSync()), max: Float64Array.from(tf.max(rows, 1).dataSync()) };
  }
}
