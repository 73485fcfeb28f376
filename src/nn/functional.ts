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

function binary(type: string, fallback: string, a: Operand, b: Operand, fn: (x: tf.Tensor | number, y: tf.Tensor | number) => tf.Tensor, opts?: OpOptions): tf.Tensor {
  const tensors = [a, b].filter((v): v is tf.Tensor => typeof v !== "number");
  if (tensors.length === 0) throw new Error(`${fallback}: at least one operand must be a tensor, got two numbers`);
  const attrs: Record<string, unknown> = {};
  if (typeof a === "number") Object.assign(attrs, { scalar: a, scalarIndex: 0 });
  if (typeof b === "number") Object.assign(attrs, { scalar: b, scalarIndex: 1 });
  return runOp({ type, name: opts?.name ?? fallback, fallback, attrs }, tensors, (ins) => {
    let k = 0;
    const x = typeof a === "number" ? a : ins[k++];
    const y = typeof b === "number" ? b : ins[k++];
    return fn(x, y);
  });
}

export function mul(a: Operand, b: Operand, opts?: OpOptions): tf.Tensor {
  return binary("Mul", "mul", a, b, (x, y) => tf.mul(x, y), opts);
}

export function add(a: Operand, b: Operand, opts?: OpOptions): tf.Tensor {
  return binary("Add", "add", a, b, (x, y) => tf.add(x, y), opts);
}

export function sub(a: Operand, b: Operand, opts?: OpOptions): tf.Tensor {
  return binary("Sub", "sub", a, b, (x, y) => tf.sub(x, y), opts);
}

export function div(a: Operand, b: Operand, opts?: OpOptions): tf.Tensor {
  return binary("Div", "div", a, b, (x, y) => tf.div(x, y), opts);
}

export function sum(x: tf.Tensor, axis: number | number[], keepDims = false, opts?: OpOptions): tf.Tensor {
  return runOp({ type: "Sum", name: opts?.name ?? "sum", fallback: "sum", attrs: { axis, keepDims } }, [x], ([t]) => tf.sum(t, axis, keepDims));
}

export function mean(x: tf.Tensor, axis: number | number[], keepDims = false, opts?: OpOptions): tf.Tensor {
  return runOp({ type: "Mean", name: opts?.name ?? "mean", fallback: "mean", attrs: { axis, keepDims } }, [x], ([t]) => tf.mean(t, axis, keepDims));
}

/** Batched matrix product of two activations (`a @ b`). */
export function matmul(a: tf.Tensor, b: tf.Tensor, opts?: OpOptions): tf.Tensor {
  const flops = a.size * (b.shape[b.rank - 1] ?? 1);
  return runOp({ type: "Matmul", name: opts?.name ?? "matmul", fallback: "matmul", flops }, [a, b], ([x, y]) => {
    if (x.shape[x.rank - 1] !== y.shape[y.rank - 2]) {
      throw new Error(`inner dimensions differ: [${x.shape}] @ [${y.shape}] needs ${x.shape[x.rank - 1]} rows in the second operand`);
    }
    return tf.matMul(x, y);
  });
}

/** `x @ weight^T + bias` with weight [out, in]; weight quantized with the op's weight qconfig. */
export function linear(x: tf.Tensor, weight: tf.Tensor, bias: tf.Tensor | null, opts?: { name?: string | null }): tf.Tensor {
  const [out, inF] = weight.shape;
  const name = opts?.name === undefined ? "linear" : opts.name;
  const rows = x.size / (x.shape[x.rank - 1] || 1);
  return runOp(
    { type: "Linear", name, fallback: "linear", weight, params: bias ? [bias] : [], flops: rows * out * inF },
    [x],
    ([t], w, params) => {
      if (t.shape[t.rank - 1] !== inF) {
        throw new Error(`input shape [${t.shape}] does not match weight shape [${weight.shape}]: the last input dimension must be ${inF}`);
      }
      const flat = tf.reshape(t, [-1, inF]);
      let y = tf.matMul(flat, w as tf.Tensor, false, true);
      if (params.length > 0) y = tf.add(y, params[0]);
      return tf.reshape(y, [...t.shape.slice(0, -1), out]);
    },
  );
}

function unary(type: string, fallback: string, fn: (t: tf.Tensor) => tf.Tensor) {
  return (x: tf.Tensor, opts?: { name?: string | null }): tf.Tensor =>
    runOp({ type, name: opts?.name === undefined ? fallback : opts.name, fallback }, [x], ([t]) => fn(t));
}

export const relu = unary("ReLU", "relu", (t) => tf.relu(t));
export const sigmoid = unary("Sigmoid", "sigmoid", (t) => tf.sigmoid(t));
export const tanh = unary("Tanh", "tanh", (t) => tf.tanh(t));
export const exp = unary("Exp", "exp", (t) => tf.exp(t));
export const rsqrt = unary("Rsqrt", "rsqrt", (t) => tf.rsqrt(t));

/**
 * Transpose as an op of its own (a data move on the BPU), so the graph stays connected: a raw
 * `tf.transpose` between two ops makes a new tensor that `prepare` cannot trace back (its check
 * report lists it as a float input). `tf.reshape` needs no wrapper.
 */
export function transpose(x: tf.Tensor, perm?: number[], opts?: OpOptions): tf.Tensor {
  const p = perm ?? x.shape.map((_, i) => x.rank - 1 - i);
  return runOp({ type: "Transpose", name: opts?.name ?? "transpose", fallback: "transpose", attrs: { perm: p }, flops: x.size }, [x], ([t]) => tf.transpose(t, p));
}

export { conv2d } from "./conv";

export function concat(xs: tf.Tensor[], axis: number, opts?: OpOptions): tf.Tensor {
  return runOp({ type: "Concat", name: opts?.name ?? "concat", fallback: "concat", attrs: { axis } }, xs, (ins) => tf.concat(ins, axis));
}
