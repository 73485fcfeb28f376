import type * as tf from "@tensorflow/tfjs";
import * as F from "./functional";
import type { PadMode } from "../ops/layout";
import { constantParameter } from "./init";
import { Module } from "./module";
import { runOp } from "./op";

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
