import * as tf from "@tensorflow/tfjs";
import * as F from "./functional";
import { constantParameter } from "./init";
import { Module } from "./module";
import { runOp } from "./op";
import { errors } from "../messages";

/**
 * LayerNorm over the last axis, written as the quantized sub-ops the BPU runs, so each gets its
 * own fake-quantizer and shows up in sensitivity tables:
 * `var_mean.pre_mean` → `var_mean.sub` → `var_mean.mul` → `var_mean.post_mean` → `add_eps` →
 * `rsqrt` (a lookup table) → `norm_mul` → `weight_mul` (gamma, quantized as a weight) →
 * `bias_add` (beta in high precision).
 */
export class LayerNorm extends Module {
  weight: tf.Variable;
  bias: tf.Variable;

  constructor(
    readonly normalizedShape: number,
    readonly eps = 1e-5,
  ) {
    super();
    this.weight = constantParameter([normalizedShape], 1);
    this.bias = constantParameter([normalizedShape], 0);
  }

  forward(x: tf.Tensor): tf.Tensor {
    if (x.shape[x.rank - 1] !== this.normalizedShape) {
      throw errors.shapeMismatch(
        "LayerNorm",
        `input shape [${x.shape}]`,
        `a shape ending in normalizedShape [${this.normalizedShape}]`,
      );
    }
    const mean = F.mean(x, -1, true, { name: "var_mean.pre_mean" });
    const diff = F.sub(x, mean, { name: "var_mean.sub" });
    const variance = F.mean(F.mul(diff, diff, { name: "var_mean.mul" }), -1, true, { name: "var_mean.post_mean" });
    const inv = F.rsqrt(F.add(variance, this.eps, { name: "add_eps" }), { name: "rsqrt" });
    const normed = F.mul(diff, inv, { name: "norm_mul" });
    const scaled = runOp({ type: "Mul", name: "weight_mul", fallback: "weight_mul", weight: this.weight }, [normed]);
    return runOp({ type: "Add", name: "bias_add", fallback: "bias_add", params: [this.bias] }, [scaled]);
  }
}
