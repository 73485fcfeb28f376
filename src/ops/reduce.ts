/** Reductions over axes: Sum, Mean. */
import * as tf from "@tensorflow/tfjs";
import { reduce } from "./int/kernels";
import { defineOp } from "./registry";

for (const [type, mean] of [
  ["Sum", false],
  ["Mean", true],
] as const) {
  defineOp({
    type,
    doc: `${mean ? "mean" : "sum"} over attrs.axis (keepDims as given)`,
    role: "compute",
    unit: "vector",
    compute: ([t], _w, _p, attrs) => (mean ? tf.mean : tf.sum)(t, attrs.axis as number | number[], Boolean(attrs.keepDims)),
    integer:
      (node) =>
      ([x]) =>
        reduce(node, x, mean),
  });
}
