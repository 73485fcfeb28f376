/** Helpers shared by op definitions. */
import type { IrNode } from "../ir/types";
import type { Value } from "./int/value";

/** The node's weight and float parameters as extra integer-model operands (after the activation inputs). */
export function extraOperands(node: IrNode): Value[] {
  return [
    ...(node.weight
      ? [{ data: Float64Array.from(node.weight.data), shape: node.weight.shape, quant: node.weight.quant }]
      : []),
    ...node.params.map((p) => ({
      data: Float64Array.from(p.data),
      shape: p.shape,
      quant: { dtype: "float32" as const, scale: null },
    })),
  ];
}

export const sizeOf = (s: number[]): number => s.reduce((a, b) => a * b, 1);

/** `v` as a pair: PyTorch's `int | (int, int)` arguments. */
export function pair(v: number | number[] | undefined, d: number): [number, number] {
  if (v === undefined) return [d, d];
  if (typeof v === "number") return [v, v];
  return [v[0], v[1] ?? v[0]];
}
