/**
 * A gated block where the article's calibration trap shows: x [B, T, C] (activations in [0, 1])
 * × w [G, C] broadcast → mul [B, T, G, C] → sum over C → + bias → sigmoid. Nearly all products
 * are tiny (w ~ 3e-3) but a few inputs (100) meet a few large weights (5), so a handful of
 * products reach 500. An MSE-calibrated int16 scale for the mul output keeps those outliers
 * (clipping them would cost far more squared error) and rounds nearly every other product to
 * zero; the sum then loses its value and the sigmoid moves. A fixed scale 7/32767 keeps the small
 * products and clips the outliers, which the sigmoid saturates anyway.
 */
import * as tf from "@tensorflow/tfjs";
import * as F from "../nn/functional";
import { DeQuantStub, QuantStub } from "../nn/layers";
import { Module } from "../nn/module";

export class GatedMulSum extends Module {
  quant = new QuantStub();
  quant_weight = new QuantStub();
  quant_bias = new QuantStub();
  dequant = new DeQuantStub();
  weight: tf.Tensor2D;
  bias: tf.Tensor1D;

  constructor(weight: tf.Tensor2D, bias: tf.Tensor1D) {
    super();
    this.weight = tf.clone(weight);
    this.bias = tf.clone(bias);
  }

  /** The example's weights and data: deterministic (seeded) tensors. Caller disposes them. */
  static demo(channels = 256, gates = 16, tokens = 64): { model: GatedMulSum; data: tf.Tensor } {
    const w = tf.tidy(() => tf.randomNormal([gates, channels], 3e-3, 1e-3, "float32", 11).dataSync() as Float32Array);
    for (let g = 0; g < gates; g += 4) w[g * channels + ((g * 7) % channels)] = 5; // a few large weights (channel 0 for gate 0)
    const x = tf.tidy(() => tf.randomUniform([2, tokens, channels], 0, 1, "float32", 12).dataSync() as Float32Array);
    for (let b = 0; b < 2; b++) for (let t = 0; t < tokens; t += 16) x[(b * tokens + t) * channels] = 100; // rare large inputs on channel 0
    const wt = tf.tensor2d(w, [gates, channels]);
    const bias = tf.fill([gates], -0.2) as tf.Tensor1D;
    const model = new GatedMulSum(wt, bias);
    tf.dispose([wt, bias]);
    return { model, data: tf.tensor3d(x, [2, tokens, channels]) };
  }

  forward(x: tf.Tensor): tf.Tensor {
    const h = this.quant.forward(x);
    const w = this.quant_weight.forward(this.weight);
    const b = this.quant_bias.forward(this.bias);
    const [g, c] = w.shape;
    const lead = h.shape.slice(0, -1);
    const prod = F.mul(tf.reshape(h, [...lead, 1, c]), tf.reshape(w, [...lead.map(() => 1), g, c]), {
      name: "gate_mul",
    });
    const gate = F.sigmoid(F.add(F.sum(prod, -1, false, { name: "gate_sum" }), b, { name: "gate_add" }), {
      name: "gate_sigmoid",
    });
    return this.dequant.forward(gate);
  }
}
