/**
 * Integer kernels derived from an op's float compute, for ops that need no arithmetic of their own:
 *
 * - `movesCodes`: an op that only moves or selects values (layout ops, max pooling, nearest
 *   resize, ReLU) commutes with the scale, so it runs on the integer codes themselves (codes up
 *   to 32767 are exact in float32) and keeps its input's dtype and scale.
 * - `realArithmetic`: an op that computes new values (softmax, average pooling, bilinear resize,
 *   a transposed convolution) is evaluated in real numbers from the codes and the weight's
 *   codes, then rounded once to the output's dtype — the chip's kernel is assumed exact up to
 *   that last rounding, so the result is within one step of the fake-quant model.
 */
import * as tf from "@tensorflow/tfjs";
import type { IrNode } from "../../ir/types";
import type { Attrs, IntKernel } from "../registry";
import { quantizeReal } from "./kernels";
import { isFloat, toReal, type Value } from "./value";

type FloatCompute = (
  inputs: tf.Tensor[],
  weight: tf.Tensor | undefined,
  params: tf.Tensor[],
  attrs: Attrs,
) => tf.Tensor;

const tensorOf = (data: ArrayLike<number>, shape: number[]) => tf.tensor(Float32Array.from(data), shape, "float32");

/** Runs `compute` on the codes of a value that keeps its scale. */
export function movesCodes(compute: FloatCompute) {
  return (node: IrNode): IntKernel =>
    (xs: Value[]) => {
      const out = tf.tidy(() =>
        compute(
          xs.map((x) => tensorOf(x.data, x.shape)),
          undefined,
          [],
          node.attrs,
        ),
      );
      const data = Float64Array.from(out.dataSync());
      const shape = out.shape.slice();
      out.dispose();
      return { data, shape, quant: isFloat(node.output.quant) ? xs[0].quant : node.output.quant };
    };
}

/** Real values of the node's weight (codes × per-channel scale). */
function realWeight(node: IrNode): Float32Array | undefined {
  const w = node.weight;
  if (w === undefined) return undefined;
  const s = w.quant.scale;
  if (s === null) return Float32Array.from(w.data);
  const axis = w.quant.axis ?? 0;
  const inner = w.shape.slice(axis + 1).reduce((a, b) => a * b, 1);
  const channels = w.shape[axis];
  return Float32Array.from(w.data, (q, i) => q * (s.length === 1 ? s[0] : s[Math.floor(i / inner) % channels]));
}

/** Evaluates `compute` in real numbers and rounds once to the output's dtype. */
export function realArithmetic(compute: FloatCompute) {
  return (node: IrNode): IntKernel => {
    const weight = realWeight(node);
    return (xs: Value[]) => {
      const out = tf.tidy(() =>
        compute(
          xs.map((x) => tensorOf(toReal(x), x.shape)),
          weight && node.weight ? tensorOf(weight, node.weight.shape) : undefined,
          node.params.map((p) => tensorOf(p.data, p.shape)),
          node.attrs,
        ),
      );
      const data = Float64Array.from(out.dataSync());
      const shape = out.shape.slice();
      out.dispose();
      return quantizeReal(data, shape, node.output.quant, node.name);
    };
  };
}
