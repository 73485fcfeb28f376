/** Reductions over axes: Sum, Mean. */
import * as tf from "@tensorflow/tfjs";
import { reduce } from "./int/kernels";
import { defineOp } from "./registry";
import { axesOf } from "./lowering";

for (const [type, mean] of [
  ["Sum", false],
  ["Mean", true],
] as const) {
  defineOp({
    type,
    doc: `${mean ? "mean" : "sum"} over attrs.axis (keepDims as given)`,
    role: "compute",
    unit: "vector",
    compute: ([t], _w, _p, attrs) =>
      (mean ? tf.mean : tf.sum)(t, attrs.axis as number | number[], Boolean(attrs.keepDims)),
    onnx: ({ b, inputs: [x], inputShapes: [xs], attrs }) => {
      const axes = axesOf(attrs.axis, xs.length);
      const keepdims = attrs.keepDims ? 1 : 0;
      // opset 17: ReduceSum takes its axes as an input, ReduceMean as an attribute
      return mean ? b.op("ReduceMean", [x], { axes, keepdims }) : b.op("ReduceSum", [x, b.int64s(axes)], { keepdims });
    },
    integer:
      (node) =>
      ([x]) =>
        reduce(node, x, mean),
  });
}
