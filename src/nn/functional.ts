/**
 * Quantization-aware functional ops (`qb.F`). In a prepared model each call gets its own
 * fake-quantizers, named `<module path>.<name>`; `name` defaults to the op (`mul`, `sum`, ...)
 * with `_1`, `_2` for repeats in one module. Numbers are constants of the op, not inputs.
 *
 * ```ts
 * const prod = qb.F.mul(x.reshape([2, 100, 1, 256]), w.reshape([1, 1, 60, 256]));  // "<path>.mul"
 * const y = qb.F.add(qb.F.sum(prod, -1), b);
 * ```
 */
import * as tf from "@tensorflow/tfjs";
import { runOp } from "./op";

export interface OpOptions {
  /** Name of the op inside its module (default: the op's own name). */
  name?: string;
}

type Operand = tf.Tensor | number;

function binary(type: string, fallback: string, a: Operand, b: Operand, opts?: OpOptions): tf.Tensor {
  const tensors = [a, b].filter((v): v is tf.Tensor => typeof v !== "number");
  if (tensors.length === 0) throw new Error(`${fallback}: at least one operand must be a tensor, got two numbers`);
  const attrs: Record<string, unknown> = {};
  if (typeof a === "number") Object.assign(attrs, { scalar: a, scalarIndex: 0 });
  if (typeof b === "number") Object.assign(attrs, { scalar: b, scalarIndex: 1 });
  return runOp({ type, name: opts?.name ?? fallback, fallback, attrs }, tensors);
}

export function mul(a: Operand, b: Operand, opts?: OpOptions): tf.Tensor {
  return binary("Mul", "mul", a, b, opts);
}

export function add(a: Operand, b: Operand, opts?: OpOptions): tf.Tensor {
  return binary("Add", "add", a, b, opts);
}

export function sub(a: Operand, b: Operand, opts?: OpOptions): tf.Tensor {
  return binary("Sub", "sub", a, b, opts);
}

export function div(a: Operand, b: Operand, opts?: OpOptions): tf.Tensor {
  return binary("Div", "div", a, b, opts);
}

export function sum(x: tf.Tensor, axis: number | number[], keepDims = false, opts?: OpOptions): tf.Tensor {
  return runOp({ type: "Sum", name: opts?.name ?? "sum", fallback: "sum", attrs: { axis, keepDims } }, [x]);
}

export function mean(x: tf.Tensor, axis: number | number[], keepDims = false, opts?: OpOptions): tf.Tensor {
  return runOp({ type: "Mean", name: opts?.name ?? "mean", fallback: "mean", attrs: { axis, keepDims } }, [x]);
}

/** Batched matrix product of two activations (`a @ b`). */
export function matmul(a: tf.Tensor, b: tf.Tensor, opts?: OpOptions): tf.Tensor {
  return runOp({ type: "Matmul", name: opts?.name ?? "matmul", fallback: "matmul" }, [a, b]);
}

/** `x @ weight^T + bias` with weight [out, in]; weight quantized with the op's weight qconfig. */
export function linear(x: tf.Tensor, weight: tf.Tensor, bias: tf.Tensor | null, opts?: { name?: string | null }): tf.Tensor {
  const name = opts?.name === undefined ? "linear" : opts.name;
  return runOp({ type: "Linear", name, fallback: "linear", weight, params: bias ? [bias] : [] }, [x]);
}

function unary(type: string, fallback: string) {
  return (x: tf.Tensor, opts?: { name?: string | null }): tf.Tensor => runOp({ type, name: opts?.name === undefined ? fallback : opts.name, fallback }, [x]);
}

export const relu = unary("ReLU", "relu");
export const sigmoid = unary("Sigmoid", "sigmoid");
export const tanh = unary("Tanh", "tanh");
export const exp = unary("Exp", "exp");
export const rsqrt = unary("Rsqrt", "rsqrt");

/**
 * Transpose as an op of its own (a data move on the BPU, keeping its input's scale), so the
 * graph stays connected: a raw `tf.transpose` between two ops makes a new tensor that `prepare`
 * cannot trace back (its check report lists it as an untraced input). `tf.reshape` needs no wrapper.
 */
export function transpose(x: tf.Tensor, perm?: number[], opts?: OpOptions): tf.Tensor {
  const p = perm ?? x.shape.map((_, i) => x.rank - 1 - i);
  return runOp({ type: "Transpose", name: opts?.name ?? "transpose", fallback: "transpose", attrs: { perm: p } }, [x]);
}

export { conv2d } from "./conv";

export function concat(xs: tf.Tensor[], axis: number, opts?: OpOptions): tf.Tensor {
  return runOp({ type: "Concat", name: opts?.name ?? "concat", fallback: "concat", attrs: { axis } }, xs);
}
