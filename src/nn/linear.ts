import type * as tf from "@tensorflow/tfjs";
import * as F from "./functional";
import { uniformParameter } from "./init";
import { Module } from "./module";
import { errors } from "../messages";

/**
 * `y = x W^T + b`, W of shape [outFeatures, inFeatures]; weights quantized per output channel.
 * `{ weightLayout: "in_out" }` stores W as [inFeatures, outFeatures] and computes `x W + b`, as
 * Paddle's Linear does, so Paddle state dicts load as they are.
 */
export class Linear extends Module {
  weight: tf.Variable;
  bias: tf.Variable | null;
  readonly weightLayout: "out_in" | "in_out";

  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    opts: { bias?: boolean; weightLayout?: "out_in" | "in_out" } = {},
  ) {
    super();
    for (const [k, v] of [
      ["inFeatures", inFeatures],
      ["outFeatures", outFeatures],
    ] as const) {
      if (!Number.isInteger(v) || v <= 0) throw errors.outOfRange("Linear", k, v, "a positive integer");
    }
    const bound = 1 / Math.sqrt(inFeatures);
    this.weightLayout = opts.weightLayout ?? "out_in";
    this.weight = uniformParameter(
      this.weightLayout === "in_out" ? [inFeatures, outFeatures] : [outFeatures, inFeatures],
      bound,
    );
    this.bias = opts.bias === false ? null : uniformParameter([outFeatures], bound);
  }

  forward(x: tf.Tensor): tf.Tensor {
    return F.linear(x, this.weight, this.bias, { name: null, weightLayout: this.weightLayout });
  }
}
