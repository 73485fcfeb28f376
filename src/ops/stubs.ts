/** QuantStub and DeQuantStub: where the model enters and leaves the quantized graph. */
import * as tf from "@tensorflow/tfjs";
import { deQuantStub, quantStub } from "./int/kernels";
import { defineOp } from "./registry";

defineOp({
  type: "QuantStub",
  doc: "quantizes a float input (its output fake-quantizer sets the scale); an integer or bool input (a 0/1 attention mask) is taken as its float values",
  role: "stub",
  unit: "none",
  compute: ([x]) => (x.dtype === "float32" ? x : tf.cast(x, "float32")),
  // the engine declares integer and bool model inputs as float32 (their values), so both are Identity
  onnx: ({ b, inputs: [x] }) => b.op("Identity", [x]),
  integer:
    (node) =>
    ([x]) =>
      quantStub(node, x),
});

defineOp({
  type: "DeQuantStub",
  doc: "returns to float at the model's output",
  role: "stub",
  unit: "none",
  compute: ([x]) => x,
  onnx: ({ b, inputs: [x] }) => b.op("Identity", [x]),
  integer:
    () =>
    ([x]) =>
      deQuantStub(x),
});
