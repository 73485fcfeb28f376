import type * as tf from "@tensorflow/tfjs";
import * as F from "./functional";
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
