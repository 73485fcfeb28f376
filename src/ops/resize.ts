/**
 * Resize of NCHW images (`Upsample` / `F.interpolate`) with PyTorch's coordinate rules by default:
 * nearest — source index floor(dst · in / out) (ONNX's asymmetric / floor convention), keeping the
 * input's scale; bilinear — align_corners true (corners map to corners) or false (half-pixel
 * centres, negative source coordinates clamped to 0). Graphs from other exporters (ONNX opset 9
 * `Upsample`, Paddle, TF) name other rules; `coordinateMode` (ONNX's
 * coordinate_transformation_mode: half_pixel, pytorch_half_pixel, align_corners, asymmetric) and
 * `nearestMode` (floor, ceil, round_prefer_floor, round_prefer_ceil) follow ONNX's definitions.
 */
import * as tf from "@tensorflow/tfjs";
import { movesCodes, realArithmetic } from "./int/generic";
import { defineOp, type Attrs } from "./registry";
import type { OnnxBuilder } from "./lowering";
import { errors } from "../messages";

/** Output size from attrs.size or attrs.scaleFactor. */
export function resizeOutput(shape: number[], a: Attrs): [number, number] {
  if (Array.isArray(a.size)) return [a.size[0] as number, (a.size[1] ?? a.size[0]) as number];
  const f = Array.isArray(a.scaleFactor)
    ? (a.scaleFactor as number[])
    : [a.scaleFactor as number, a.scaleFactor as number];
  if (!(f[0] > 0))
    throw errors.invalidArgument(
      "resize",
      "neither a size nor a positive scaleFactor",
      "pass size or a scaleFactor > 0",
    );
  return [Math.floor(shape[2] * f[0]), Math.floor(shape[3] * (f[1] ?? f[0]))];
}

/** The factor source = dst · scale uses: 1 / scaleFactor when given (PyTorch), else in / out. */
function coordScale(n: number, out: number, a: Attrs, axis: 0 | 1): number {
  if (Array.isArray(a.size) || a.scaleFactor === undefined || a.scaleFactor === null) return n / out;
  const f = Array.isArray(a.scaleFactor)
    ? ((a.scaleFactor as number[])[axis] ?? (a.scaleFactor as number[])[0])
    : (a.scaleFactor as number);
  return 1 / f;
}

export type CoordinateMode = "half_pixel" | "pytorch_half_pixel" | "align_corners" | "asymmetric";
export type NearestMode = "floor" | "ceil" | "round_prefer_floor" | "round_prefer_ceil";
export const COORDINATE_MODES: readonly CoordinateMode[] = [
  "half_pixel",
  "pytorch_half_pixel",
  "align_corners",
  "asymmetric",
];
export const NEAREST_MODES: readonly NearestMode[] = ["floor", "ceil", "round_prefer_floor", "round_prefer_ceil"];

/** The source coordinate of output position d (ONNX's coordinate_transformation_mode). */
function sourceCoord(d: number, n: number, out: number, scale: number, mode: CoordinateMode): number {
  switch (mode) {
    case "align_corners":
      return out > 1 ? (d * (n - 1)) / (out - 1) : 0;
    case "asymmetric":
      return d * scale;
    case "pytorch_half_pixel":
      return out > 1 ? (d + 0.5) * scale - 0.5 : 0;
    case "half_pixel":
      return (d + 0.5) * scale - 0.5;
  }
}

function roundNearest(x: number, mode: NearestMode): number {
  switch (mode) {
    case "floor":
      return Math.floor(x);
    case "ceil":
      return Math.ceil(x);
    case "round_prefer_floor":
      return x - Math.floor(x) === 0.5 ? Math.floor(x) : Math.round(x);
    case "round_prefer_ceil":
      return Math.floor(x + 0.5);
  }
}

/** Source rows and columns of a nearest resize. */
function nearestTables(shape: number[], a: Attrs): { rows: number[]; cols: number[] } {
  const [oh, ow] = resizeOutput(shape, a);
  const [h, w] = [shape[2], shape[3]];
  const coord = (a.coordinateMode as CoordinateMode | undefined) ?? "asymmetric";
  const rounding = (a.nearestMode as NearestMode | undefined) ?? "floor";
  const index = (d: number, n: number, out: number, axis: 0 | 1) =>
    Math.max(0, Math.min(roundNearest(sourceCoord(d, n, out, coordScale(n, out, a, axis), coord), rounding), n - 1));
  const rows = Array.from({ length: oh }, (_, i) => index(i, h, oh, 0));
  const cols = Array.from({ length: ow }, (_, j) => index(j, w, ow, 1));
  return { rows, cols };
}

export function resizeNearest(t: tf.Tensor, a: Attrs): tf.Tensor {
  const { rows, cols } = nearestTables(t.shape, a);
  return tf.gather(tf.gather(t, rows, 2), cols, 3);
}

/** Source positions and weights of one axis for bilinear resize. */
function linearTaps(
  n: number,
  out: number,
  mode: CoordinateMode,
  scale: number,
): { i0: number[]; i1: number[]; w1: number[] } {
  const i0: number[] = [];
  const i1: number[] = [];
  const w1: number[] = [];
  for (let d = 0; d < out; d++) {
    const src = Math.max(0, Math.min(sourceCoord(d, n, out, scale, mode), n - 1));
    const lo = Math.min(Math.floor(src), n - 1);
    i0.push(lo);
    i1.push(Math.min(lo + 1, n - 1));
    w1.push(src - lo);
  }
  return { i0, i1, w1 };
}

function bilinearTables(shape: number[], a: Attrs) {
  const [oh, ow] = resizeOutput(shape, a);
  const [h, w] = [shape[2], shape[3]];
  const mode = (a.coordinateMode as CoordinateMode | undefined) ?? (a.alignCorners ? "align_corners" : "half_pixel");
  return {
    oh,
    ow,
    ry: linearTaps(h, oh, mode, coordScale(h, oh, a, 0)),
    rx: linearTaps(w, ow, mode, coordScale(w, ow, a, 1)),
  };
}

/** Bilinear resize as ONNX: the same gathers and interpolation weights as `resizeBilinear`. */
function lowerBilinear(b: OnnxBuilder, x: string, shape: number[], a: Attrs): string {
  const { oh, ow, ry, rx } = bilinearTables(shape, a);
  const lerp = (lo: string, hi: string, wt: string) => b.op("Add", [lo, b.op("Mul", [b.op("Sub", [hi, lo]), wt])]);
  const gather = (v: string, idx: number[], axis: number) => b.op("Gather", [v, b.int64s(idx)], { axis });
  const rowsMixed = lerp(gather(x, ry.i0, 2), gather(x, ry.i1, 2), b.constant(Float32Array.from(ry.w1), [1, 1, oh, 1]));
  return lerp(
    gather(rowsMixed, rx.i0, 3),
    gather(rowsMixed, rx.i1, 3),
    b.constant(Float32Array.from(rx.w1), [1, 1, 1, ow]),
  );
}

export function resizeBilinear(t: tf.Tensor, a: Attrs): tf.Tensor {
  const { oh, ow, ry, rx } = bilinearTables(t.shape, a);
  const wy = tf.tensor(ry.w1, [1, 1, oh, 1]);
  const wx = tf.tensor(rx.w1, [1, 1, 1, ow]);
  const lerp = (lo: tf.Tensor, hi: tf.Tensor, wt: tf.Tensor) => tf.add(lo, tf.mul(tf.sub(hi, lo), wt));
  const rowsMixed = lerp(tf.gather(t, ry.i0, 2), tf.gather(t, ry.i1, 2), wy);
  return lerp(tf.gather(rowsMixed, rx.i0, 3), tf.gather(rowsMixed, rx.i1, 3), wx);
}

defineOp({
  type: "ResizeNearest",
  doc: "nearest-neighbour resize (size or scaleFactor; coordinateMode, nearestMode as ONNX); keeps its input's scale",
  role: "passthrough",
  unit: "vector",
  compute: ([t], _w, _p, a) => resizeNearest(t, a),
  onnx: ({ b, inputs: [x], inputShapes: [xs], attrs }) => {
    const { rows, cols } = nearestTables(xs, attrs);
    return b.op("Gather", [b.op("Gather", [x, b.int64s(rows)], { axis: 2 }), b.int64s(cols)], { axis: 3 });
  },
  integer: movesCodes(([t], _w, _p, a) => resizeNearest(t, a)),
});

defineOp({
  type: "ResizeBilinear",
  doc: "bilinear resize (size or scaleFactor, alignCorners, or coordinateMode as ONNX)",
  role: "compute",
  unit: "vector",
  compute: ([t], _w, _p, a) => resizeBilinear(t, a),
  onnx: ({ b, inputs: [x], inputShapes: [xs], attrs }) => lowerBilinear(b, x, xs, attrs),
  flops: ([x]) => 4 * x.reduce((p, d) => p * d, 1),
  integer: realArithmetic(([t], _w, _p, a) => resizeBilinear(t, a)),
});

export type GridSampleMode = "bilinear" | "nearest";
export type GridPadding = "zeros" | "border" | "reflection";

/** Reflects coordinates into [lo, hi] (PyTorch's reflect_coordinates; lo == hi maps everything to lo). */
function reflect(t: tf.Tensor, lo: number, hi: number): tf.Tensor {
  if (hi <= lo) return tf.fill(t.shape, lo);
  const span = hi - lo;
  const d = tf.abs(tf.sub(t, lo));
  const flips = tf.floor(tf.div(d, span));
  const extra = tf.sub(d, tf.mul(flips, span));
  const even = tf.equal(tf.mod(flips, 2), 0);
  return tf.where(even, tf.add(extra, lo), tf.sub(hi, extra));
}

/**
 * PyTorch's F.grid_sample / ONNX GridSample on NCHW: grid [N, Ho, Wo, 2] holds (x, y) in [−1, 1];
 * bilinear or nearest; zeros, border or reflection padding; align_corners.
 */
export function gridSample(x: tf.Tensor, grid: tf.Tensor, a: Attrs): tf.Tensor {
  const [n, c, h, w] = x.shape as number[];
  const [, ho, wo] = grid.shape as number[];
  const align = Boolean(a.alignCorners);
  const padding = ((a.paddingMode as GridPadding | undefined) ?? "zeros") as GridPadding;
  const mode = ((a.mode as GridSampleMode | undefined) ?? "bilinear") as GridSampleMode;
  const unnorm = (g: tf.Tensor, size: number) =>
    align ? tf.mul(tf.add(g, 1), (size - 1) / 2) : tf.div(tf.sub(tf.mul(tf.add(g, 1), size), 1), 2);
  const [gx, gy] = tf.split(tf.reshape(grid, [n, ho * wo, 2]), 2, 2).map((t) => tf.reshape(t, [n, ho * wo]));
  let px = unnorm(gx, w);
  let py = unnorm(gy, h);
  if (padding === "border") {
    px = tf.clipByValue(px, 0, w - 1);
    py = tf.clipByValue(py, 0, h - 1);
  } else if (padding === "reflection") {
    px = tf.clipByValue(align ? reflect(px, 0, w - 1) : reflect(px, -0.5, w - 0.5), 0, w - 1);
    py = tf.clipByValue(align ? reflect(py, 0, h - 1) : reflect(py, -0.5, h - 0.5), 0, h - 1);
  }
  // pixels as rows [N·H·W, C]; a sample's row is n·H·W + y·W + x (gather with batchDims is wrong on the wasm backend)
  const rows = tf.reshape(tf.transpose(tf.reshape(x, [n, c, h * w]), [0, 2, 1]), [n * h * w, c]);
  const base = tf.reshape(tf.mul(tf.range(0, n), h * w), [n, 1]);
  // one corner: its values [N, C, P] times weight [N, 1, P], zero where it falls outside
  const tap = (ix: tf.Tensor, iy: tf.Tensor, wt: tf.Tensor) => {
    const inside = tf.logicalAnd(
      tf.logicalAnd(tf.greaterEqual(ix, 0), tf.lessEqual(ix, w - 1)),
      tf.logicalAnd(tf.greaterEqual(iy, 0), tf.lessEqual(iy, h - 1)),
    );
    const idx = tf.cast(
      tf.add(base, tf.add(tf.mul(tf.clipByValue(iy, 0, h - 1), w), tf.clipByValue(ix, 0, w - 1))),
      "int32",
    );
    const vals = tf.transpose(tf.reshape(tf.gather(rows, tf.reshape(idx, [-1]), 0), [n, ho * wo, c]), [0, 2, 1]);
    return tf.mul(vals, tf.reshape(tf.where(inside, wt, tf.zerosLike(wt)), [n, 1, ho * wo]));
  };
  let out: tf.Tensor;
  if (mode === "nearest") {
    // nearbyint: round half to even
    out = tap(tf.round(px), tf.round(py), tf.onesLike(px));
  } else {
    const x0 = tf.floor(px);
    const y0 = tf.floor(py);
    const fx = tf.sub(px, x0);
    const fy = tf.sub(py, y0);
    const x1 = tf.add(x0, 1);
    const y1 = tf.add(y0, 1);
    const one = (t: tf.Tensor) => tf.sub(1, t);
    out = tf.addN([
      tap(x0, y0, tf.mul(one(fx), one(fy))),
      tap(x1, y0, tf.mul(fx, one(fy))),
      tap(x0, y1, tf.mul(one(fx), fy)),
      tap(x1, y1, tf.mul(fx, fy)),
    ]);
  }
  return tf.reshape(out, [n, c, ho, wo]);
}

defineOp({
  type: "GridSample",
  doc: "samples the input at the grid's normalised (x, y) (bilinear or nearest; zeros, border or reflection padding; alignCorners), as PyTorch's grid_sample; computed from codes and rounded once",
  role: "compute",
  unit: "vector",
  compute: ([x, grid], _w, _p, a) => gridSample(x, grid, a),
  onnx: ({ b, inputs: [x, grid], attrs }) =>
    b.op("GridSample", [x, grid], {
      mode: (attrs.mode as string | undefined) ?? "bilinear",
      padding_mode: (attrs.paddingMode as string | undefined) ?? "zeros",
      align_corners: attrs.alignCorners ? 1 : 0,
    }),
  flops: ([x, g]) => 8 * (x[1] ?? 1) * (g[1] ?? 1) * (g[2] ?? 1) * (x[0] ?? 1),
  integer: realArithmetic(([x, grid], _w, _p, a) => gridSample(x, grid, a)),
});
