import type * as tf from "@tensorflow/tfjs";
import { Module } from "./module";

/**
 * Children run in order, named "0", "1", ... as in PyTorch, so state-dict keys such as
 * `features.0.0.weight` match a torch checkpoint.
 */
export class Sequential extends Module {
  constructor(...modules: Module[]) {
    super();
    modules.forEach((m, i) => ((this as unknown as Record<string, Module>)[String(i)] = m));
  }

  /** The children in order. */
  layers(): Module[] {
    return Object.keys(this)
      .filter((k) => /^\d+$/.test(k))
      .sort((a, b) => Number(a) - Number(b))
      .map((k) => (this as unknown as Record<string, Module>)[k]);
  }

  forward(x: tf.Tensor): tf.Tensor {
    let y = x;
    for (const m of this.layers()) y = (m.forward as (t: tf.Tensor) => tf.Tensor)(y);
    return y;
  }
}
