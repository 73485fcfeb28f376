/**
 * Resize of NCHW images (`Upsample` / `F.interpolate`) with PyTorch's coordinate rules:
 * nearest — source index floor(dst · in / out) (ONNX's asymmetric / floor convention), keeping the
 * input's scale; bilinear — align_corners true (corners map to corners) or false (half-pixel
 * centres, negative source coordinates clamped to 0).
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

export function resizeNearest(t: tf.Tensor, a: Attrs): tf.Tensor {
  const [oh, ow] = resizeOutput(t.shape, a);
  const [h, w] = [t.shape[2] as number, t.shape[3] as number];
  const rows = Array.from({ length: oh }, (_, i) => Math.min(Math.floor(i * coordScale(h, oh, a, 0)), h - 1));
  const cols = Array.from({ length: ow }, (_, j) => Math.min(Math.floor(j * coordScale(w, ow, a, 1)), w - 1));
  return tf.gather(tf.gather(t, rows, 2), cols, 3);
}

/** Source positions and weights of one axis for bilinear resize. */
function linearTaps(n: number, out: number, alignCorners: boolean, scale: number): { i0: number[]; i1: number[]; w1: number[] } {
  const i0: number[] = [];
  const i1: number[] = [];
  const w1: number[] = [];
  for (let d = 0; d < out; d++) {
    let src = alignCorners ? (out > 1 ? (d * (n - 1)) / (out - 1) : 0) : (d + 0.5) * scale - 0.5;
    if (src < 0) src = 0;
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
  const align = Boolean(a.alignCorners);
  const ry = linearTaps(h, oh, align, coordScale(h, oh, a, 0));
  const rx = linearTaps(w, ow, align, coordScale(w, ow, a, 1));
  const wy = tf.tensor(ry.w1, [1, 1, oh, 1]);
  const wx = tf.tensor(rx.w1, [1, 1, 1, ow]);
  const lerp = (lo: tf.Tensor, hi: tf.Tensor, wt: tf.Tensor) => tf.add(lo, tf.mul(tf.sub(hi, lo), wt));
  const rowsMixed = lerp(tf.gather(t, ry.i0, 2), tf.gather(t, ry.i1, 2), wy);
  return lerp(tf.gather(rowsMixed, rx.i0, 3), tf.gather(rowsMixed, rx.i1, 3), wx);
}

defineOp({
  type: "ResizeNearest",
  doc: "nearest-neighbour resize (size or scaleFactor); keeps its input's scale",
  role: "passthrough",
  unit: "vector",
  compute: ([t], _w, _p, a) => resizeNearest(t, a),
  integer: movesCodes(([t], _w, _p, a) => resizeNearest(t, a)),
});

defineOp({
  type: "ResizeBilinear",
  doc: "bilinear resize (size or scaleFactor, alignCorners)",
  role: "compute",
  unit: "vector",
  compute: ([t], _w, _p, a) => resizeBilinear(t, a),
  flops: ([x]) => 4 * x.reduce((p, d) => p * d, 1),
  integer: realArithmetic(([t], _w, _p, a) => resizeBilinear(t, a)),
});
