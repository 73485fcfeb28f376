/** Ops that move values: Transpose keeps its input's scale; Concat re-expresses its inputs at one output scale. */
import * as tf from "@tensorflow/tfjs";
import { concat, transpose } from "./int/kernels";
import { movesCodes } from "./int/generic";
import { defineOp, type Attrs } from "./registry";
import { errors } from "../messages";

defineOp({
  type: "Transpose",
  doc: "permutes axes (attrs.perm); keeps its input's scale",
  role: "passthrough",
  unit: "vector",
  compute: ([t], _w, _p, attrs) => tf.transpose(t, attrs.perm as number[]),
  integer:
    (node) =>
    ([x]) =>
      transpose(node, x),
});

defineOp({
  type: "Concat",
  doc: "joins inputs along attrs.axis at one output scale",
  role: "compute",
  unit: "vector",
  compute: (xs, _w, _p, attrs) => tf.concat(xs, attrs.axis as number),
  integer: (node) => (xs) => concat(node, xs),
});

/** Normalised slice: per axis start, end (exclusive), step > 0, clamped to the dims (Python / ONNX rules). */
export function sliceBounds(shape: number[], a: Attrs): { begin: number[]; end: number[]; strides: number[] } {
  const axes = (a.axes as number[] | undefined) ?? (a.starts as number[]).map((_, i) => i);
  const begin = shape.map(() => 0);
  const end = shape.slice();
  const strides = shape.map(() => 1);
  axes.forEach((axRaw, i) => {
    const ax = axRaw < 0 ? axRaw + shape.length : axRaw;
    const n = shape[ax];
    const step = ((a.steps as number[] | undefined) ?? [])[i] ?? 1;
    if (step <= 0) throw errors.coded("INVALID_ARGUMENT", `slice: step ${step} on axis ${axRaw}; only positive steps are supported`);
    const norm = (v: number) => Math.min(Math.max(v < 0 ? v + n : v, 0), n);
    begin[ax] = norm((a.starts as number[])[i]);
    end[ax] = Math.max(norm((a.ends as number[])[i]), begin[ax]);
    strides[ax] = step;
  });
  return { begin, end, strides };
}

export function slice(t: tf.Tensor, a: Attrs): tf.Tensor {
  const { begin, end, strides } = sliceBounds(t.shape, a);
  return tf.stridedSlice(t, begin, end, strides);
}

const layoutOps: [string, string, (t: tf.Tensor[], a: Attrs) => tf.Tensor][] = [
  ["Slice", "elements start:end:step per axis (attrs.starts, ends, axes, steps)", ([t], a) => slice(t, a)],
  ["Gather", "elements at constant attrs.indices along attrs.axis", ([t], a) => tf.gather(t, a.indices as number[], a.axis as number)],
  ["Expand", "broadcasts to attrs.shape", ([t], a) => tf.broadcastTo(t, a.shape as number[])],
  ["MaxReduce", "max over attrs.axis (keepDims)", ([t], a) => tf.max(t, a.axis as number | number[], Boolean(a.keepDims))],
];

for (const [type, doc, fn] of layoutOps) {
  defineOp({
    type,
    doc: `${doc}; keeps its input's scale`,
    role: "passthrough",
    unit: "vector",
    compute: (xs, _w, _p, a) => fn(xs, a),
    integer: movesCodes((xs, _w, _p, a) => fn(xs, a)),
  });
}

/** attrs.pads: [before, after] per axis; attrs.value: the constant. */
export function padConstant(t: tf.Tensor, a: Attrs, value = (a.value as number | undefined) ?? 0): tf.Tensor {
  return tf.pad(t, a.pads as [number, number][], value);
}

defineOp({
  type: "Pad",
  doc: "constant padding (attrs.pads [before, after] per axis, attrs.value); keeps its input's scale, the value rounded to its grid",
  role: "passthrough",
  unit: "vector",
  compute: ([t], _w, _p, a) => padConstant(t, a),
  integer:
    (node) =>
    ([x]) => {
      const v = (node.attrs.value as number | undefined) ?? 0;
      const code = x.quant.scale === null ? v : Math.round(v / x.quant.scale[0]);
      return movesCodes(([t], _w, _p, a) => padConstant(t, a, code))(node)([x]);
    },
});
