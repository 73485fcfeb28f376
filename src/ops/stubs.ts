/** QuantStub and DeQuantStub: where the model enters and leaves the quantized graph. */
import { deQuantStub, quantStub } from "./int/kernels";
import { defineOp } from "./registry";

defineOp({
  type: "QuantStub",
  doc: "quantizes a float input (its output fake-quantizer sets the scale)",
  role: "stub",
  unit: "none",
  compute: ([x]) => x,
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
