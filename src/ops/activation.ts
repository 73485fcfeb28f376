/**
 * Nonlinear functions. On the chip they are lookup tables over every input code (the integer
 * model builds the same table); ReLU of a quantized input only clamps codes, so it keeps its
 * input's scale.
 */
import * as tf from "@tensorflow/tfjs";
import { buildLut } from "./int/kernels";
import { defineOp, type Attrs } from "./registry";

/** A LUT op: float compute and the table's real function. */
export function defineLut(type: string, doc: string, compute: (t: tf.Tensor, attrs: Attrs) => tf.Tensor, lut: (x: number, attrs: Attrs) => number): void {
  defineOp({
    type,
    doc,
    role: "compute",
    unit: "lut",
    compute: ([t], _w, _p, attrs) => compute(t, attrs),
    integer: (node) => buildLut(node, (x) => lut(x, node.attrs)),
    lut,
  });
}

defineLut("Sigmoid", "1 / (1 + e^-x)", (t) => tf.sigmoid(t), (x) => 1 / (1 + Math.exp(-x)));
defineLut("Tanh", "tanh(x)", (t) => tf.tanh(t), Math.tanh);
defineLut("Exp", "e^x", (t) => tf.exp(t), Math.exp);
defineLut("Rsqrt", "1 / sqrt(x)", (t) => tf.rsqrt(t), (x) => 1 / Math.sqrt(x));

defineOp({
  type: "ReLU",
  doc: "max(x, 0); keeps its input's scale",
  role: "passthrough",
  unit: "vector",
  compute: ([t]) => tf.relu(t),
  integer: (node) => ([x]) => ({ data: x.data.map((q) => Math.max(q, 0)), shape: x.shape, quant: node.output.quant }),
});
