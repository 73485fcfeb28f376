/**
 * The article's rewrite: a Linear computed as broadcast multiply + sum over the last axis + bias
 * add. In float it is the same function (up to summation order); quantized, the weight and bias
 * enter through their own QuantStubs and are quantized per tensor like activations, and the mul,
 * sum and add outputs get their own fake-quantizers — which is what lets a J6E/M chip run a
 * "Linear" with int16 input *and* int16 weight.
 *
 * ```ts
 * const rewritten = qb.transforms.replaceLinearWithBroadcastMulSum(model, "linear2");
 * rewritten.loadStateDict(ckpt);              // linear2.weight / linear2.bias still load
 * ```
 */
import * as tf from "@tensorflow/tfjs";
import * as F from "../nn/functional";
import { QuantStub } from "../nn/layers";
import { Linear } from "../nn/linear";
import { cloneModule, Module } from "../nn/module";
import { replaceChild } from "./replace";
import { errors } from "../messages";

/** A Linear as broadcast mul + sum + add; parameters keep the Linear's names and shapes. */
export class BroadcastMulSumLinear extends Module {
  weight: tf.Variable;
  bias: tf.Variable | null;
  quant_weight = new QuantStub();
  quant_bias = new QuantStub();
  /** Paddle-layout weights ([in, out], e.g. an imported MatMul projection) are transposed by an op of their own. */
  readonly weightLayout: "out_in" | "in_out";

  constructor(linear: Linear) {
    super();
    this.weightLayout = linear.weightLayout;
    this.weight = tf.variable(linear.weight);
    this.bias = linear.bias ? tf.variable(linear.bias) : null;
    this.training = linear.training;
  }

  forward(x: tf.Tensor): tf.Tensor {
    const [out, inF] = (
      this.weightLayout === "in_out" ? [this.weight.shape[1], this.weight.shape[0]] : this.weight.shape
    ) as [number, number];
    if (x.shape[x.rank - 1] !== inF) {
      throw errors.shapeMismatch(
        "BroadcastMulSumLinear",
        `input shape [${x.shape}] for weight shape [${this.weight.shape}]`,
        `the last input dimension ${inF}`,
      );
    }
    const lead = x.shape.slice(0, -1);
    const wq = this.quant_weight.forward(this.weight);
    const w = this.weightLayout === "in_out" ? F.transpose(wq, [1, 0], { name: "weight_t" }) : wq;
    const prod = F.mul(tf.reshape(x, [...lead, 1, inF]), tf.reshape(w, [...lead.map(() => 1), out, inF]));
    const summed = F.sum(prod, -1);
    return this.bias ? F.add(summed, this.quant_bias.forward(this.bias)) : summed;
  }
}

/**
 * A copy of `model` whose Linear at `path` (e.g. "linear2" or "blocks.0.fc") is a
 * BroadcastMulSumLinear. The original model is not changed. No retraining is needed: calibrate
 * (and optionally fine-tune with QAT) the copy.
 */
export function replaceLinearWithBroadcastMulSum<T extends Module>(model: T, path: string): T {
  const modules = new Map(model.namedModules());
  const target = modules.get(path);
  if (!(target instanceof Linear)) {
    const linears = [...modules].filter(([, m]) => m instanceof Linear).map(([p]) => p);
    throw errors.wrongModule("replaceLinearWithBroadcastMulSum", path, target, "Linear", linears);
  }
  const copy = cloneModule(model);
  replaceChild(copy, path, new BroadcastMulSumLinear(new Map(copy.namedModules()).get(path) as Linear));
  return copy;
}
