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
  integer:
    () =>
    ([x]) =>
      deQuantStub(x),
});
