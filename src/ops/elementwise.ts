/**
 * Element-wise arithmetic with broadcasting: Mul, Add, Sub, Div. Operands are the activation
 * inputs, then the op's weight (quantized, e.g. LayerNorm's gamma) and float parameters (e.g. a
 * bias), with an optional number operand (`attrs.scalar` at `attrs.scalarIndex`).
 */
import * as tf from "@tensorflow/tfjs";
import { addSub, divide, mul, operandOf } from "./int/kernels";
import { extraOperands } from "./common";
import { realArithmetic } from "./int/generic";
import { defineOp, type Attrs } from "./registry";
import type { LowerContext, Lowering } from "./lowering";

/** All operands in order, the number operand (if any) at its index. */
function operands(
  inputs: tf.Tensor[],
  weight: tf.Tensor | undefined,
  params: tf.Tensor[],
  attrs: Attrs,
): (tf.Tensor | number)[] {
  const all: (tf.Tensor | number)[] = [...inputs, ...(weight ? [weight] : []), ...params];
  if (typeof attrs.scalar === "number") all.splice((attrs.scalarIndex as number | undefined) ?? 1, 0, attrs.scalar);
  return all;
}

/** The lowering of a fold: the same operands in the same order, one binary ONNX node per step. */
function lowerFold(opType: string): Lowering {
  return ({ b, inputs, weight, params, attrs }: LowerContext) => {
    const all = [...inputs, ...(weight !== undefined ? [weight] : []), ...params];
    if (typeof attrs.scalar === "number")
      all.splice((attrs.scalarIndex as number | undefined) ?? 1, 0, b.scalar(attrs.scalar));
    return all.slice(1).reduce((acc, v) => b.op(opType, [acc, v]), all[0]);
  };
}

function fold(fn: (a: tf.Tensor | number, b: tf.Tensor | number) => tf.Tensor) {
  return (inputs: tf.Tensor[], weight: tf.Tensor | undefined, params: tf.Tensor[], attrs: Attrs): tf.Tensor => {
    const [first, ...rest] = operands(inputs, weight, params, attrs);
    return rest.reduce<tf.Tensor | number>((acc, v) => fn(acc, v), first) as tf.Tensor;
  };
}

defineOp({
  type: "Mul",
  doc: "a · b (broadcasting)",
  role: "compute",
  unit: "vector",
  compute: fold((a, b) => tf.mul(a, b)),
  onnx: lowerFold("Mul"),
  integer: (node) => {
    const more = extraOperands(node);
    return (xs) => mul(node, [...xs, ...more].map(operandOf), node.attrs.scalar as number | undefined);
  },
});

for (const [type, sign, fn] of [
  ["Add", 1, (a: tf.Tensor | number, b: tf.Tensor | number) => tf.add(a, b)],
  ["Sub", -1, (a: tf.Tensor | number, b: tf.Tensor | number) => tf.sub(a, b)],
] as const) {
  defineOp({
    type,
    doc: type === "Add" ? "a + b (broadcasting)" : "a − b (broadcasting)",
    role: "compute",
    unit: "vector",
    compute: fold(fn),
    onnx: lowerFold(type),
    integer: (node) => {
      const more = extraOperands(node);
      const scalar = node.attrs.scalar as number | undefined;
      const at = (node.attrs.scalarIndex as number | undefined) ?? 1;
      return (xs) => addSub(node, [...xs, ...more].map(operandOf), sign, scalar, at);
    },
  });
}

defineOp({
  type: "Div",
  doc: "a / b (broadcasting); the integer model divides exactly and rounds once (the BPU's reciprocal table + multiply is assumed exact)",
  role: "compute",
  unit: "vector",
  compute: fold((a, b) => tf.div(a, b)),
  onnx: lowerFold("Div"),
  integer: (node) => {
    const more = extraOperands(node);
    const scalar = node.attrs.scalar as number | undefined;
    const at = (node.attrs.scalarIndex as number | undefined) ?? 1;
    return (xs) => divide(node, [...xs, ...more], scalar, at);
  },
});

for (const [type, fn, doc] of [
  [
    "Maximum",
    (a: tf.Tensor | number, b: tf.Tensor | number) => tf.maximum(a, b),
    "max(a, b) element-wise (broadcasting)",
  ],
  [
    "Minimum",
    (a: tf.Tensor | number, b: tf.Tensor | number) => tf.minimum(a, b),
    "min(a, b) element-wise (broadcasting)",
  ],
] as const) {
  defineOp({
    type,
    doc: `${doc}; operands of different scales are compared in real values and the result rounded once to the output's grid`,
    role: "compute",
    unit: "vector",
    compute: fold(fn),
    onnx: lowerFold(type === "Maximum" ? "Max" : "Min"),
    integer: realArithmetic(fold(fn)),
  });
}

/** cond (a 0/1 float parameter) ? a : b, all three broadcasting. */
export function whereSelect(cond: tf.Tensor, a: tf.Tensor, b: tf.Tensor): tf.Tensor {
  const full = tf.backend_util.assertAndGetBroadcastShape(
    tf.backend_util.assertAndGetBroadcastShape(a.shape, b.shape),
    cond.shape,
  );
  return tf.where(tf.broadcastTo(tf.greater(cond, 0.5), full), tf.broadcastTo(a, full), tf.broadcastTo(b, full));
}

defineOp({
  type: "Where",
  doc: "cond ? a : b with a constant condition (params[0], 0/1) and two tensor operands of possibly different scales; computed from codes and rounded once",
  role: "compute",
  unit: "vector",
  compute: ([a, b], _w, [cond]) => whereSelect(cond, a, b),
  onnx: ({ b, inputs: [x, y], params: [cond] }) => b.op("Where", [b.op("Greater", [cond, b.scalar(0.5)]), x, y]),
  integer: realArithmetic(([a, b], _w, [cond]) => whereSelect(cond, a, b)),
});
