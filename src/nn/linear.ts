import type * as tf from "@tensorflow/tfjs";
import * as F from "./functional";
import { uniformParameter } from "./init";
import { Module } from "./module";

/** `y = x W^T + b`, W of shape [outFeatures, inFeatures]; weights quantized per output channel. */
export class Linear extends Module {
  weight: tf.Variable;
  bias: tf.Variable | null;

  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    opts: { bias?: boolean } = {},
  ) {
    super();
    for (const [k, v] of [["inFeatures", inFeatures], ["outFeatures", outFeatures]] as const) {
      if (!Number.isInteger(v) || v <= 0) throw new Error(`Linear: ${k} must be a positive integer, got ${v}`);
    }
    const bound = 1 / Math.sqrt(inFeatures);
    this.weight = uniformParameter([outFeatures, inFeatures], bound);
    this.bias = opts.bias === false ? null : uniformParameter([outFeatures], bound);
  }

  forward(x: tf.Tensor): tf.Tensor {
    return F.linear(x, this.weight, this.bias, { name: null });
  }
}
