/** Ops that move values: Transpose keeps its input's scale; Concat re-expresses its inputs at one output scale. */
import * as tf from "@tensorflow/tfjs";
import { concat, transpose } from "./int/kernels";
import { movesCodes } from "./int/generic";
import { defineOp, type Attrs } from "./registry";
import { axesOf, type Lowering, type OnnxBuilder } from "./lowering";
import { errors } from "../messages";
import type { OpType } from "./opTypes";

defineOp({
  type: "Transpose",
  doc: "permutes axes (attrs.perm); keeps its input's scale",
  role: "passthrough",
  unit: "vector",
  compute: ([t], _w, _p, attrs) => tf.transpose(t, attrs.perm as number[]),
  onnx: ({ b, inputs: [x], inputShapes: [xs], attrs }) =>
    b.op("Transpose", [x], { perm: (attrs.perm as number[] | undefined) ?? xs.map((_, i) => xs.length - 1 - i) }),
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
  onnx: ({ b, inputs, inputShapes, attrs }) =>
    b.op("Concat", inputs, { axis: axesOf(attrs.axis, inputShapes[0].length)[0] }),
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
    if (step <= 0)
      throw errors.invalidArgument(`slice`, `step ${step} on axis ${axRaw}`, `only positive steps are supported`);
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

const layoutOps: [OpType, string, (t: tf.Tensor[], a: Attrs) => tf.Tensor, Lowering][] = [
  [
    "Slice",
    "elements start:end:step per axis (attrs.starts, ends, axes, steps)",
    ([t], a) => slice(t, a),
    ({ b, inputs: [x], inputShapes: [xs], attrs }) => {
      const { begin, end, strides } = sliceBounds(xs, attrs);
      const axes = xs.map((_, i) => i);
      return b.op("Slice", [x, b.int64s(begin), b.int64s(end), b.int64s(axes), b.int64s(strides)]);
    },
  ],
  [
    "Gather",
    "elements at constant attrs.indices along attrs.axis",
    ([t], a) => tf.gather(t, a.indices as number[], a.axis as number),
    ({ b, inputs: [x], attrs }) => {
      const idx = attrs.indices as number | number[];
      return b.op("Gather", [x, Array.isArray(idx) ? b.int64s(idx) : b.int64s([idx], [])], {
        axis: (attrs.axis as number | undefined) ?? 0,
      });
    },
  ],
  [
    "Expand",
    "broadcasts to attrs.shape",
    ([t], a) => tf.broadcastTo(t, a.shape as number[]),
    ({ b, inputs: [x], outputShape }) => b.op("Expand", [x, b.int64s(outputShape)]),
  ],
  [
    "MaxReduce",
    "max over attrs.axis (keepDims)",
    ([t], a) => tf.max(t, a.axis as number | number[], Boolean(a.keepDims)),
    ({ b, inputs: [x], inputShapes: [xs], attrs }) =>
      b.op("ReduceMax", [x], { axes: axesOf(attrs.axis, xs.length), keepdims: attrs.keepDims ? 1 : 0 }),
  ],
  [
    "MinReduce",
    "min over attrs.axis (keepDims)",
    ([t], a) => tf.min(t, a.axis as number | number[], Boolean(a.keepDims)),
    ({ b, inputs: [x], inputShapes: [xs], attrs }) =>
      b.op("ReduceMin", [x], { axes: axesOf(attrs.axis, xs.length), keepdims: attrs.keepDims ? 1 : 0 }),
  ],
  [
    "Tile",
    "repeats along each axis (attrs.reps)",
    ([t], a) => tf.tile(t, a.reps as number[]),
    ({ b, inputs: [x], attrs }) => b.op("Tile", [x, b.int64s(attrs.reps as number[])]),
  ],
  [
    "DepthToSpace",
    "channels to blocks of attrs.blocksize² pixels (attrs.mode DCR, or CRD = PyTorch's pixel_shuffle)",
    ([t], a) => depthToSpace(t, a.blocksize as number, a.mode as string),
    ({ b, inputs: [x], attrs }) =>
      b.op("DepthToSpace", [x], {
        blocksize: attrs.blocksize as number,
        mode: (attrs.mode as string | undefined) ?? "DCR",
      }),
  ],
  [
    "SpaceToDepth",
    "blocks of attrs.blocksize² pixels to channels (ONNX's order)",
    ([t], a) => spaceToDepth(t, a.blocksize as number),
    ({ b, inputs: [x], attrs }) => b.op("SpaceToDepth", [x], { blocksize: attrs.blocksize as number }),
  ],
];

/** ONNX DepthToSpace on NCHW: DCR (depth-column-row) or CRD (PyTorch's pixel_shuffle). */
export function depthToSpace(t: tf.Tensor, b: number, mode = "DCR"): tf.Tensor {
  const [n, c, h, w] = t.shape as number[];
  const c2 = c / (b * b);
  if (!Number.isInteger(c2)) throw errors.shapeMismatch("depth_to_space", `${c} channels`, `a multiple of ${b}×${b}`);
  const y =
    mode === "CRD"
      ? tf.transpose(tf.reshape(t, [n, c2, b, b, h, w]), [0, 1, 4, 2, 5, 3])
      : tf.transpose(tf.reshape(t, [n, b, b, c2, h, w]), [0, 3, 4, 1, 5, 2]);
  return tf.reshape(y, [n, c2, h * b, w * b]);
}

/** ONNX SpaceToDepth on NCHW: output channel (i·b + j)·C + c. */
export function spaceToDepth(t: tf.Tensor, b: number): tf.Tensor {
  const [n, c, h, w] = t.shape as number[];
  if (h % b !== 0 || w % b !== 0) throw errors.shapeMismatch("space_to_depth", `${h}×${w}`, `both multiples of ${b}`);
  const y = tf.transpose(tf.reshape(t, [n, c, h / b, b, w / b, b]), [0, 3, 5, 1, 2, 4]);
  return tf.reshape(y, [n, c * b * b, h / b, w / b]);
}

for (const [type, doc, fn, onnx] of layoutOps) {
  defineOp({
    type,
    doc: `${doc}; keeps its input's scale`,
    role: "passthrough",
    unit: "vector",
    compute: (xs, _w, _p, a) => fn(xs, a),
    onnx,
    integer: movesCodes((xs, _w, _p, a) => fn(xs, a)),
  });
}

export type PadMode = "constant" | "reflect" | "replicate" | "circular";
export const PAD_MODES: readonly PadMode[] = ["constant", "reflect", "replicate", "circular"];

/** Source index of padded position i (−before ≤ i < n + after) on an axis of n elements. */
function padSource(i: number, n: number, mode: PadMode): number {
  if (mode === "replicate") return Math.min(Math.max(i, 0), n - 1);
  if (mode === "circular") return ((i % n) + n) % n;
  // reflect: mirror about the edge element, which is not repeated
  let j = i;
  while (j < 0 || j >= n) j = j < 0 ? -j : 2 * (n - 1) - j;
  return j;
}

/**
 * attrs.pads: [before, after] per axis; attrs.mode (PyTorch's names; ONNX's edge is replicate):
 * constant with attrs.value, or reflect / replicate / circular, which only select elements.
 */
export function padTensor(t: tf.Tensor, a: Attrs, value = (a.value as number | undefined) ?? 0): tf.Tensor {
  const pads = a.pads as [number, number][];
  const mode = (a.mode as PadMode | undefined) ?? "constant";
  if (mode === "constant") return tf.pad(t, pads, value);
  let out = t;
  pads.forEach(([before, after], axis) => {
    if (before === 0 && after === 0) return;
    out = tf.gather(out, padIndices(t.shape[axis] as number, before, after, mode), axis);
  });
  return out === t ? tf.clone(t) : out;
}

/** The source index of every padded position of one axis (reflect, replicate, circular select elements). */
function padIndices(n: number, before: number, after: number, mode: PadMode): number[] {
  return Array.from({ length: n + before + after }, (_, k) => padSource(k - before, n, mode));
}

/** Pad as ONNX nodes: Pad with a constant, or a Gather per padded axis (the same selection as `padTensor`). */
export function lowerPad(b: OnnxBuilder, x: string, shape: number[], a: Attrs): string {
  const pads = a.pads as [number, number][];
  const mode = (a.mode as PadMode | undefined) ?? "constant";
  if (mode === "constant") {
    const value = (a.value as number | undefined) ?? 0;
    return b.op("Pad", [x, b.int64s([...pads.map((p) => p[0]), ...pads.map((p) => p[1])]), b.scalar(value)]);
  }
  let out = x;
  pads.forEach(([before, after], axis) => {
    if (before !== 0 || after !== 0)
      out = b.op("Gather", [out, b.int64s(padIndices(shape[axis], before, after, mode))], { axis });
  });
  return out === x ? b.op("Identity", [x]) : out;
}

defineOp({
  type: "Pad",
  doc: "padding (attrs.pads [before, after] per axis; attrs.mode constant with attrs.value, reflect, replicate or circular); keeps its input's scale, a constant rounded to its grid",
  role: "passthrough",
  insertsValues: true,
  unit: "vector",
  compute: ([t], _w, _p, a) => padTensor(t, a),
  onnx: ({ b, inputs: [x], inputShapes: [xs], attrs }) => lowerPad(b, x, xs, attrs),
  integer:
    (node) =>
    ([x]) => {
      const v = (node.attrs.value as number | undefined) ?? 0;
      const code = x.quant.scale === null ? v : Math.round(v / x.quant.scale[0]);
      return movesCodes(([t], _w, _p, a) => padTensor(t, a, code))(node)([x]);
    },
});

/** Broadcasts a 0/1 mask (a float parameter) against x and selects: mask > 0.5 takes `value`. */
export function maskedFill(t: tf.Tensor, mask: tf.Tensor, value: number): tf.Tensor {
  const shape = tf.backend_util.assertAndGetBroadcastShape(t.shape, mask.shape);
  return tf.where(tf.broadcastTo(tf.greater(mask, 0.5), shape), tf.fill(shape, value), tf.broadcastTo(t, shape));
}

defineOp({
  type: "MaskedFill",
  doc: "torch.masked_fill / ONNX Where with a constant: positions where the constant mask (params[0], broadcasting) is set take attrs.value (−∞ allowed: ±Number.MAX_VALUE is ±∞ in float32); keeps its input's scale, the value rounded and clamped to its grid",
  role: "passthrough",
  insertsValues: true,
  unit: "vector",
  compute: ([t], _w, [mask], a) => maskedFill(t, mask, a.value as number),
  onnx: ({ b, inputs: [x], params: [mask], attrs, outputShape }) => {
    const cond = b.op("Expand", [b.op("Greater", [mask, b.scalar(0.5)]), b.int64s(outputShape)]);
    return b.op("Where", [cond, b.scalar(attrs.value as number), b.op("Expand", [x, b.int64s(outputShape)])]);
  },
  flops: ([x]) => x.reduce((p, d) => p * d, 1),
  integer: (node) => {
    const value = node.attrs.value as number;
    const mask = node.params[0];
    return ([x]) => {
      const s = x.quant.scale;
      const [lo, hi] =
        x.quant.dtype === "qint8" ? [-128, 127] : x.quant.dtype === "qint16" ? [-32768, 32767] : [-Infinity, Infinity];
      const code = s === null ? Math.fround(value) : Math.min(Math.max(Math.round(value / s[0]), lo), hi);
      return movesCodes(([t]) => tf.tidy(() => maskedFill(t, tf.tensor(mask.data, mask.shape, "float32"), code)))(node)(
        [x],
      );
    };
  },
});
