/**
 * The article's model: input [2, 100, 256] → linear1 256→256 → LayerNorm → ReLU →
 * linear2 256→60 → linear3 60→60, between a QuantStub and a DeQuantStub. `SmallModel` keeps
 * linear2 a Linear; `SmallModelMulSum` computes it as broadcast mul + sum + add with the
 * weight and bias entering through their own QuantStubs (so they are quantized per tensor,
 * like activations).
 */
import * as tf from "@tensorflow/tfjs";
import * as F from "../nn/functional";
import { LayerNorm } from "../nn/layernorm";
import { DeQuantStub, QuantStub } from "../nn/layers";
import { ReLU } from "../nn/generated/layers";
import { Linear } from "../nn/linear";
import { Module } from "../nn/module";
import { errors } from "../messages";

export class SmallModel extends Module {
  quant = new QuantStub();
  linear1 = new Linear(256, 256);
  layernorm = new LayerNorm(256);
  relu = new ReLU();
  linear2 = new Linear(256, 60);
  linear3 = new Linear(60, 60);
  dequant = new DeQuantStub();

  forward(x: tf.Tensor): tf.Tensor {
    let h = this.quant.forward(x);
    h = this.relu.forward(this.layernorm.forward(this.linear1.forward(h)));
    h = this.linear2.forward(h);
    return this.dequant.forward(this.linear3.forward(h));
  }
}

export class SmallModelMulSum extends Module {
  quant = new QuantStub();
  linear1 = new Linear(256, 256);
  layernorm = new LayerNorm(256);
  relu = new ReLU();
  quant_linear2_weight = new QuantStub();
  quant_linear2_bias = new QuantStub();
  /** Plain tensors (constants), as in the article: not parameters, not in the state dict. */
  linear2_weight: tf.Tensor2D;
  linear2_bias: tf.Tensor1D;
  linear3 = new Linear(60, 60);
  dequant = new DeQuantStub();

  constructor(linear2Weight: tf.Tensor, linear2Bias: tf.Tensor) {
    super();
    if (linear2Weight.rank !== 2 || linear2Bias.rank !== 1 || linear2Bias.shape[0] !== linear2Weight.shape[0]) {
      throw errors.shapeMismatch(
        "SmallModelMulSum",
        `weight [${linear2Weight.shape}] and bias [${linear2Bias.shape}]`,
        "weight [out, in] and bias [out]",
      );
    }
    this.linear2_weight = tf.clone(linear2Weight) as tf.Tensor2D;
    this.linear2_bias = tf.clone(linear2Bias) as tf.Tensor1D;
  }

  forward(x: tf.Tensor): tf.Tensor {
    let h = this.quant.forward(x);
    h = this.relu.forward(this.layernorm.forward(this.linear1.forward(h)));
    const w = this.quant_linear2_weight.forward(this.linear2_weight);
    const b = this.quant_linear2_bias.forward(this.linear2_bias);
    const [out, inF] = w.shape;
    const lead = h.shape.slice(0, -1);
    const prod = F.mul(tf.reshape(h, [...lead, 1, inF]), tf.reshape(w, [...lead.map(() => 1), out, inF]), {
      name: "linear2_mul",
    });
    h = F.add(F.sum(prod, -1, false, { name: "linear2_sum" }), b, { name: "linear2_add" });
    return this.dequant.forward(this.linear3.forward(h));
  }
}
