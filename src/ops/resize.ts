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
import { errors } from "../messages";

/** Output size from attrs.size or attrs.scaleFactor. */
export function resizeOutput(shape: number[], a: Attrs): [number, number] {
  if (Array.isArray(a.size)) return [a.size[0] as number, (a.size[1] ?? a.size[0]) as number];
  const f = Array.isArray(a.scaleFactor) ? (a.scaleFactor as number[]) : [a.scaleFactor as number, a.scaleFactor as number];
  if (!(f[0] > 0)) throw errors.coded("INVALID_ARGUMENT", "resize needs size or a positive scaleFactor");
  return [Math.floor(shape[2] * f[0]), Math.floor(shape[3] * (f[1] ?? f[0]))];
}

/** The factor source = dst · scale uses: 1 / scaleFactor when given (PyTorch), else in / out. */
function coordScale(n: number, out: number, a: Attrs, axis: 0 | 1): number {
  if (Array.isArray(a.size) || a.scaleFactor === undefined || a.scaleFactor === null) return n / out;
  const f = Array.isArray(a.scaleFactor) ? ((a.scaleFactor as number[])[axis] ?? (a.scaleFactor as number[])[0]) : (a.scaleFactor as number);
  return 1 / f;
}

export type CoordinateMode = "half_pixel" | "pytorch_half_pixel" | "align_corners" | "asymmetric";
export type NearestMode = "floor" | "ceil" | "round_prefer_floor" | "round_prefer_ceil";
export const COORDINATE_MODES: readonly CoordinateMode[] = ["half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric"];
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

export function resizeNearest(t: tf.Tensor, a: Attrs): tf.Tensor {
  const [oh, ow] = resizeOutput(t.shape, a);
  const [h, w] = [t.shape[2] as number, t.shape[3] as number];
  const coord = (a.coordinateMode as CoordinateMode | undefined) ?? "asymmetric";
  const rounding = (a.nearestMode as NearestMode | undefined) ?? "floor";
  const index = (d: number, n: number, out: number, axis: 0 | 1) =>
    Math.max(0, Math.min(roundNearest(sourceCoord(d, n, out, coordScale(n, out, a, axis), coord), rounding), n - 1));
  const rows = Array.from({ length: oh }, (_, i) => index(i, h, oh, 0));
  const cols = Array.from({ length: ow }, (_, j) => index(j, w, ow, 1));
  return tf.gather(tf.gather(t, rows, 2), cols, 3);
}

/** Source positions and weights of one axis for bilinear resize. */
function linearTaps(n: number, out: number, mode: CoordinateMode, scale: number): { i0: number[]; i1: number[]; w1: number[] } {
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

export function resizeBilinear(t: tf.Tensor, a: Attrs): tf.Tensor {
  const [oh, ow] = resizeOutput(t.shape, a);
  const [h, w] = [t.shape[2] as number, t.shape[3] as number];
  const mode = (a.coordinateMode as CoordinateMode | undefined) ?? (a.alignCorners ? "align_corners" : "half_pixel");
  const ry = linearTaps(h, oh, mode, coordScale(h, oh, a, 0));
  const rx = linearTaps(w, ow, mode, coordScale(w, ow, a, 1));
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
  integer: movesCodes(([t], _w, _p, a) => resizeNearest(t, a)),
});

defineOp({
  type: "ResizeBilinear",
  doc: "bilinear resize (size or scaleFactor, alignCorners, or coordinateMode as ONNX)",
  role: "compute",
  unit: "vector",
  compute: ([t], _w, _p, a) => resizeBilinear(t, a),
  flops: ([x]) => 4 * x.reduce((p, d) => p * d, 1),
  integer: realArithmetic(([t], _w, _p, a) => resizeBilinear(t, a)),
});
