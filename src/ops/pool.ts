/**
 * Pooling with PyTorch's semantics (NCHW): MaxPool2d (keeps its input's scale: it selects
 * values), AvgPool2d (ceil_mode, count_include_pad) and AdaptiveAvgPool2d (any output size).
 */
import * as tf from "@tensorflow/tfjs";
import { pair } from "./common";
import { movesCodes, realArithmetic } from "./int/generic";
import { defineOp, type Attrs } from "./registry";
import type { OnnxBuilder } from "./lowering";
import { errors } from "../messages";

interface PoolGeometry {
  k: [number, number];
  s: [number, number];
  p: [number, number];
  /** Output size. */
  out: [number, number];
  /** Rows / columns added after the padding so the last (ceil_mode) window fits. */
  extra: [number, number];
}

/** Output size of a pooling window over `size` (PyTorch's rule, including ceil_mode's last-window check). */
function poolDim(size: number, k: number, s: number, p: number, ceil: boolean): [number, number] {
  let out = (ceil ? Math.ceil : Math.floor)((size + 2 * p - k) / s) + 1;
  if (ceil && (out - 1) * s >= size + p) out--;
  const needed = (out - 1) * s + k;
  return [out, Math.max(0, needed - (size + 2 * p))];
}

function geometry(shape: number[], a: Attrs): PoolGeometry {
  const k = pair(a.kernelSize as number[], 1);
  const s = pair((a.stride as number[] | null) ?? k, 1);
  const p = pair(a.padding as number[], 0);
  if (![...k, ...s].every((v) => Number.isInteger(v) && v >= 1) || !p.every((v) => Number.isInteger(v) && v >= 0)) {
    throw errors.outOfRange(
      "pooling",
      "kernel, stride and padding",
      `[${k}], [${s}], [${p}]`,
      "integers ≥ 1 (kernel, stride) and ≥ 0 (padding)",
    );
  }
  if (p[0] > k[0] / 2 || p[1] > k[1] / 2)
    throw errors.outOfRange("pooling", "padding", `[${p}]`, `at most half the kernel [${k}] (as in PyTorch)`);
  const [oh, eh] = poolDim(shape[2], k[0], s[0], p[0], Boolean(a.ceilMode));
  const [ow, ew] = poolDim(shape[3], k[1], s[1], p[1], Boolean(a.ceilMode));
  if (oh < 1 || ow < 1)
    throw errors.shapeMismatch(
      "pooling",
      `the [${k}] window on input [${shape}] with padding [${p}]`,
      "a window that fits the padded input",
    );
  return { k, s, p, out: [oh, ow], extra: [eh, ew] };
}

const nhwc = (t: tf.Tensor) => tf.transpose(t, [0, 2, 3, 1]) as tf.Tensor4D;
const nchw = (t: tf.Tensor) => tf.transpose(t, [0, 3, 1, 2]);

function padNCHW(t: tf.Tensor, g: PoolGeometry, value: number): tf.Tensor {
  return tf.pad(
    t,
    [
      [0, 0],
      [0, 0],
      [g.p[0], g.p[0] + g.extra[0]],
      [g.p[1], g.p[1] + g.extra[1]],
    ],
    value,
  );
}

/** The padding of `padNCHW` as ONNX Pad nodes. */
function lowerPadNCHW(b: OnnxBuilder, x: string, g: PoolGeometry, value: number): string {
  if (g.p[0] + g.extra[0] + g.p[1] + g.extra[1] === 0) return x;
  return b.op("Pad", [
    x,
    b.int64s([0, 0, g.p[0], g.p[1], 0, 0, g.p[0] + g.extra[0], g.p[1] + g.extra[1]]),
    b.scalar(value),
  ]);
}

/** The divisor of each AvgPool2d window, as computed by `avgPool2d` (NHWC [1, oh, ow, 1]), or a number. */
function avgDivisor(shape: number[], g: PoolGeometry, a: Attrs): tf.Tensor | number {
  if (typeof a.divisorOverride === "number") return a.divisorOverride;
  const [h, w] = [shape[2], shape[3]];
  const area = g.k[0] * g.k[1];
  const mask =
    a.countIncludePad === false
      ? padNCHW(tf.ones([1, 1, h, w]), g, 0)
      : tf.pad(tf.ones([1, 1, h + 2 * g.p[0], w + 2 * g.p[1]]), [
          [0, 0],
          [0, 0],
          [0, g.extra[0]],
          [0, g.extra[1]],
        ]);
  return tf.mul(tf.avgPool(nhwc(mask), g.k, g.s, "valid"), area);
}

export function maxPool2d(t: tf.Tensor, a: Attrs): tf.Tensor {
  if (pair(a.dilation as number[], 1).some((d) => d !== 1))
    throw errors.unsupported("MaxPool2d", "dilation > 1", "use dilation 1");
  const g = geometry(t.shape, a);
  return nchw(tf.maxPool(nhwc(padNCHW(t, g, -Infinity)), g.k, g.s, "valid"));
}

export function avgPool2d(t: tf.Tensor, a: Attrs): tf.Tensor {
  const g = geometry(t.shape, a);
  const area = g.k[0] * g.k[1];
  const sums = tf.mul(tf.avgPool(nhwc(padNCHW(t, g, 0)), g.k, g.s, "valid"), area);
  // the divisor of each window: the cells it covers inside the input (count_include_pad: or its padding)
  return nchw(tf.div(sums, avgDivisor(t.shape, g, a)));
}

function lowerAvgPool2d(b: OnnxBuilder, x: string, shape: number[], a: Attrs): string {
  const g = geometry(shape, a);
  const area = g.k[0] * g.k[1];
  const sums = b.op("Mul", [
    b.op("AveragePool", [lowerPadNCHW(b, x, g, 0)], { kernel_shape: g.k, strides: g.s }),
    b.scalar(area),
  ]);
  const d = avgDivisor(shape, g, a);
  if (typeof d === "number") return b.op("Div", [sums, b.scalar(d)]);
  const divisor = tf.tidy(() => nchw(d));
  try {
    return b.op("Div", [sums, b.constant(divisor.dataSync() as Float32Array, divisor.shape, "float32", "divisor")]);
  } finally {
    divisor.dispose();
    d.dispose();
  }
}

/** Adaptive average pooling as ONNX: a mean over H, W; a plain AveragePool when the bins tile the input; else a mean per bin. */
function lowerAdaptiveAvgPool2d(b: OnnxBuilder, x: string, shape: number[], a: Attrs): string {
  const [h, w] = [shape[2], shape[3]];
  const size = pair(a.outputSize as number[], 1);
  const oh = size[0] ?? h;
  const ow = size[1] ?? w;
  if (oh === 1 && ow === 1) return b.op("ReduceMean", [x], { axes: [2, 3], keepdims: 1 });
  if (h % oh === 0 && w % ow === 0)
    return b.op("AveragePool", [x], { kernel_shape: [h / oh, w / ow], strides: [h / oh, w / ow] });
  const rows = bins(h, oh).map(([r0, r1]) => {
    const cells = bins(w, ow).map(([c0, c1]) =>
      b.op("ReduceMean", [b.op("Slice", [x, b.int64s([r0, c0]), b.int64s([r1, c1]), b.int64s([2, 3])])], {
        axes: [2, 3],
        keepdims: 1,
      }),
    );
    return cells.length === 1 ? cells[0] : b.op("Concat", cells, { axis: 3 });
  });
  return rows.length === 1 ? rows[0] : b.op("Concat", rows, { axis: 2 });
}

/** PyTorch's adaptive bins: [floor(i·n/out), ceil((i+1)·n/out)). */
function bins(n: number, out: number): [number, number][] {
  return Array.from({ length: out }, (_, i) => [Math.floor((i * n) / out), Math.ceil(((i + 1) * n) / out)]);
}

export function adaptiveAvgPool2d(t: tf.Tensor, a: Attrs): tf.Tensor {
  const [h, w] = [t.shape[2] as number, t.shape[3] as number];
  const size = pair(a.outputSize as number[], 1);
  const oh = size[0] ?? h;
  const ow = size[1] ?? w;
  if (oh === 1 && ow === 1) return tf.mean(t, [2, 3], true);
  const rows = bins(h, oh).map(([r0, r1]) =>
    tf.concat(
      bins(w, ow).map(([c0, c1]) => tf.mean(tf.slice(t, [0, 0, r0, c0], [-1, -1, r1 - r0, c1 - c0]), [2, 3], true)),
      3,
    ),
  );
  return tf.concat(rows, 2);
}

defineOp({
  type: "MaxPool2d",
  doc: "max over windows (kernelSize, stride, padding, ceilMode); keeps its input's scale",
  role: "passthrough",
  unit: "vector",
  compute: ([t], _w, _p, a) => maxPool2d(t, a),
  onnx: ({ b, inputs: [x], inputShapes: [xs], attrs }) => {
    if (pair(attrs.dilation as number[], 1).some((d) => d !== 1))
      throw errors.unsupported("MaxPool2d", "dilation > 1", "use dilation 1");
    const g = geometry(xs, attrs);
    return b.op("MaxPool", [lowerPadNCHW(b, x, g, -Infinity)], { kernel_shape: g.k, strides: g.s });
  },
  integer: movesCodes(([t], _w, _p, a) => maxPool2d(t, a)),
});

defineOp({
  type: "AvgPool2d",
  doc: "mean over windows (kernelSize, stride, padding, ceilMode, countIncludePad, divisorOverride)",
  role: "compute",
  unit: "vector",
  compute: ([t], _w, _p, a) => avgPool2d(t, a),
  onnx: ({ b, inputs: [x], inputShapes: [xs], attrs }) => lowerAvgPool2d(b, x, xs, attrs),
  integer: realArithmetic(([t], _w, _p, a) => avgPool2d(t, a)),
});

defineOp({
  type: "AdaptiveAvgPool2d",
  doc: "mean over PyTorch's adaptive bins to attrs.outputSize ([1, 1]: global average pooling)",
  role: "compute",
  unit: "vector",
  compute: ([t], _w, _p, a) => adaptiveAvgPool2d(t, a),
  onnx: ({ b, inputs: [x], inputShapes: [xs], attrs }) => lowerAdaptiveAvgPool2d(b, x, xs, attrs),
  integer: realArithmetic(([t], _w, _p, a) => adaptiveAvgPool2d(t, a)),
});
