/** Ops that move values: Transpose keeps its input's scale; Concat re-expresses its inputs at one output scale. */
import * as tf from "@tensorflow/tfjs";
import { concat, transpose } from "./int/kernels";
import { defineOp } from "./registry";

defineOp({
  type: "Transpose",
  doc: "permutes axes (attrs.perm); keeps its input's scale",
  role: "passthrough",
  unit: "vector",
  compute: ([t], _w, _p, attrs) => tf.transpose(t, attrs.perm as number[]),
  integer: (node) => ([x]) => transpose(node, x),
});

defineOp({
  type: "Concat",
  doc: "joins inputs along attrs.axis at one output scale",
  role: "compute",
  unit: "vector",
  compute: (xs, _w, _p, attrs) => tf.concat(xs, attrs.axis as number),
  integer: (node) => (xs) => concat(node, xs),
});
