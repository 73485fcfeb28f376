import type * as tf from "@tensorflow/tfjs";
import * as F from "./functional";
import type { PadMode } from "../ops/layout";
import { constantParameter } from "./init";
import { Module } from "./module";
import { runOp } from "./op";

export class ReLU extends Module {
  forward(x: tf.Tensor): tf.Tensor {
    return F.relu(x, { name: null });
  }
}

export class Sigmoid extends Module {
  forward(x: tf.Tensor): tf.Tensor {
    return F.sigmoid(x, { name: null });
  }
}

/** Entry of float data into the quantized graph: its output is the first fake-quantized tensor. */
export class QuantStub extends Module {
  forward(x: tf.Tensor): tf.Tensor {
    return runOp({ type: "QuantStub", name: null, fallback: "quant" }, [x]);
  }
}

/** Exit of the quantized graph: its output is float. */
export class DeQuantStub extends Module {
  forward(x: tf.Tensor): tf.Tensor {
    return runOp({ type: "DeQuantStub", name: null, fallback: "dequant" }, [x]);
  }
}

type Pair = number | [number, number];

export class ReLU6 extends Module {
  forward(x: tf.Tensor): tf.Tensor {
    return F.relu6(x, { name: null });
  }
}

export class Hardswish extends Module {
  forward(x: tf.Tensor): tf.Tensor {
    return F.hardswish(x, { name: null });
  }
}

export class SiLU extends Module {
  forward(x: tf.Tensor): tf.Tensor {
    return F.silu(x, { name: null });
  }
}

export class Tanh extends Module {
  forward(x: tf.Tensor): tf.Tensor {
    return F.tanh(x, { name: null });
  }
}

export class Hardtanh extends Module {
  constructor(
    readonly minVal = -1,
    readonly maxVal = 1,
  ) {
    super();
  }
  forward(x: tf.Tensor): tf.Tensor {
    return F.hardtanh(x, this.minVal, this.maxVal, { name: null });
  }
}

/** clamp(alpha·x + beta, 0, 1): PyTorch's alpha = 1/6; Paddle's Hardsigmoid uses alpha = 0.2 (pass it). */
export class Hardsigmoid extends Module {
  constructor(
    readonly alpha = 1 / 6,
    readonly beta = 0.5,
  ) {
    super();
  }
  forward(x: tf.Tensor): tf.Tensor {
    return F.hardsigmoid(x, { alpha: this.alpha, beta: this.beta, name: null });
  }
}

export class GELU extends Module {
  constructor(readonly approximate: "none" | "tanh" = "none") {
    super();
  }
  forward(x: tf.Tensor): tf.Tensor {
    return F.gelu(x, { approximate: this.approximate, name: null });
  }
}

export class ELU extends Module {
  constructor(readonly alpha = 1) {
    super();
  }
  forward(x: tf.Tensor): tf.Tensor {
    return F.elu(x, this.alpha, { name: null });
  }
}

export class Mish extends Module {
  forward(x: tf.Tensor): tf.Tensor {
    return F.mish(x, { name: null });
  }
}

export class Softplus extends Module {
  constructor(
    readonly beta = 1,
    readonly threshold = 20,
  ) {
    super();
  }
  forward(x: tf.Tensor): tf.Tensor {
    return F.softplus(x, { beta: this.beta, threshold: this.threshold, name: null });
  }
}

/** nn.PReLU: a learned slope per channel (numParameters = C) or one shared (1), initialised to `init`. */
export class PReLU extends Module {
  weight: tf.Variable;
  constructor(numParameters = 1, init = 0.25) {
    super();
    this.weight = constantParameter([numParameters], init);
  }
  forward(x: tf.Tensor): tf.Tensor {
    return F.prelu(x, this.weight, { name: null });
  }
}

export class LeakyReLU extends Module {
  constructor(readonly negativeSlope = 0.01) {
    super();
  }
  forward(x: tf.Tensor): tf.Tensor {
    return F.leakyRelu(x, this.negativeSlope, { name: null });
  }
}

export class Softmax extends Module {
  constructor(readonly dim: number) {
    super();
  }
  forward(x: tf.Tensor): tf.Tensor {
    return F.softmax(x, this.dim, { name: null });
  }
}

export class MaxPool2d extends Module {
  constructor(
    readonly kernelSize: Pair,
    readonly options: F.PoolOptions & { dilation?: Pair } = {},
  ) {
    super();
  }
  forward(x: tf.Tensor): tf.Tensor {
    return F.maxPool2d(x, this.kernelSize, { ...this.options, name: null });
  }
}

export class AvgPool2d extends Module {
  constructor(
    readonly kernelSize: Pair,
    readonly options: F.PoolOptions & { countIncludePad?: boolean; divisorOverride?: number | null } = {},
  ) {
    super();
  }
  forward(x: tf.Tensor): tf.Tensor {
    return F.avgPool2d(x, this.kernelSize, { ...this.options, name: null });
  }
}

export class AdaptiveAvgPool2d extends Module {
  constructor(readonly outputSize: Pair) {
    super();
  }
  forward(x: tf.Tensor): tf.Tensor {
    return F.adaptiveAvgPool2d(x, this.outputSize, { name: null });
  }
}

export class Upsample extends Module {
  constructor(
    readonly options: { size?: Pair; scaleFactor?: Pair; mode?: "nearest" | "bilinear"; alignCorners?: boolean },
  ) {
    super();
  }
  forward(x: tf.Tensor): tf.Tensor {
    return F.interpolate(x, { ...this.options, name: null });
  }
}

/** nn.ZeroPad2d / ConstantPad2d / ReflectionPad2d / ReplicationPad2d: `padding` as (left, right, top, bottom) or one number. */
export class Pad2d extends Module {
  readonly padding: number[];
  constructor(
    padding: number | [number, number, number, number],
    readonly mode: PadMode = "constant",
    readonly value = 0,
  ) {
    super();
    this.padding = typeof padding === "number" ? [padding, padding, padding, padding] : [...padding];
  }
  forward(x: tf.Tensor): tf.Tensor {
    return F.pad(x, this.padding, this.value, { name: null, mode: this.mode });
  }
}
export class ZeroPad2d extends Pad2d {
  constructor(padding: number | [number, number, number, number]) {
    super(padding, "constant", 0);
  }
}
export class ReflectionPad2d extends Pad2d {
  constructor(padding: number | [number, number, number, number]) {
    super(padding, "reflect");
  }
}
export class ReplicationPad2d extends Pad2d {
  constructor(padding: number | [number, number, number, number]) {
    super(padding, "replicate");
  }
}

export class Flatten extends Module {
  constructor(
    readonly startDim = 1,
    readonly endDim = -1,
  ) {
    super();
  }
  forward(x: tf.Tensor): tf.Tensor {
    return F.flatten(x, this.startDim, this.endDim);
  }
}

/** Dropout at inference: passes its input through (quantbook models run in eval semantics). */
export class Dropout extends Module {
  constructor(readonly p = 0.5) {
    super();
  }
  forward(x: tf.Tensor): tf.Tensor {
    return x;
  }
}
