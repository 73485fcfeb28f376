/**
 * The op registry: the one list of op types quantbook knows. Each entry says how the op computes
 * in float, what quantization does to it, how many operations a call costs, how it runs in
 * integer arithmetic, and which chip unit runs it. `qb.F` and the layers, the tracer, the IR
 * validation, `checkModel`, `perf` and `convert` all read it; none keeps a list of its own.
 * Adding an op is one entry (a file under `src/ops/`) plus its chip rules in `src/march/data/`.
 *
 * Quantization roles (the reference toolchain's semantics):
 * - `stub`: QuantStub / DeQuantStub, the float ↔ integer boundary.
 * - `gemm`: has a weight quantized per output channel (`weightAxis`), accumulates in int32, gets
 *   an output fake-quantizer (or keeps a high-precision output before a DeQuantStub).
 * - `compute`: computes new values (arithmetic, reductions, nonlinear functions via LUTs): gets
 *   its own output fake-quantizer.
 * - `passthrough`: only moves or selects values (layout ops, max pooling, ReLU-like clamps of a
 *   quantized input): its output keeps its input's dtype and scale, no fake-quantizer of its own.
 */
import type * as tf from "@tensorflow/tfjs";
import type { IrNode } from "../ir/types";
import type { Value } from "./int/value";
import type { Lowering } from "./lowering";
import { errors } from "../messages";
import type { OpType } from "./opTypes";

export type QuantRole = "stub" | "gemm" | "compute" | "passthrough";
/** The unit that runs an op: the tensor (MAC) array, the vector unit, a lookup table, nothing (stubs), or the CPU. */
export type ChipUnit = "tensor" | "vector" | "lut" | "none" | "cpu";
export type Attrs = Record<string, unknown>;
/** An integer-model kernel: values (codes at their scales, or floats) in, one value out. */
export type IntKernel = (inputs: Value[]) => Value;

export interface OpDef {
  type: OpType;
  /** One line: what it computes. */
  doc: string;
  role: QuantRole;
  /** `gemm`: the weight's per-channel axis (may depend on the call's attributes, e.g. a weight layout). */
  weightAxis?: number | ((attrs: Attrs) => number);
  /** The unit it runs on: what perf costs it as, on every march that has a rule for the op (else the CPU). */
  unit: ChipUnit;
  /** Float compute with PyTorch's semantics (NCHW). */
  compute(inputs: tf.Tensor[], weight: tf.Tensor | undefined, params: tf.Tensor[], attrs: Attrs): tf.Tensor;
  /** Multiply-accumulates (GEMMs) or element operations of one call; default: the largest input's size. */
  flops?(inputs: number[][], weight: number[] | undefined, attrs: Attrs): number;
  /** Builds the integer-arithmetic kernel of one node (at convert time). */
  integer(node: IrNode): IntKernel;
  /** LUT ops: the real function the table holds. */
  lut?: (x: number, attrs: Attrs) => number;
  /**
   * `passthrough` ops that put values of their own next to the moved ones (a padding constant, a
   * masked-fill value): fake quantization puts their output on the input's grid (the constant
   * rounded, ±∞ saturated), as the integer model does.
   */
  insertsValues?: boolean;
  /**
   * The ONNX nodes that compute it (PyTorch's semantics), for the onnxruntime engine and ONNX
   * writers. An op without one makes a model that uses it run on tfjs (with a notice naming it).
   */
  onnx?: Lowering;
}

const registry = new Map<string, OpDef>();

/** Adds an op type; a type is defined once. */
export function defineOp(def: OpDef): OpDef {
  if (registry.has(def.type)) throw errors.internal("op registry", `${def.type} is defined twice`);
  registry.set(def.type, def);
  return def;
}

/** The op of a type, or undefined. */
export function findOp(type: string): OpDef | undefined {
  return registry.get(type);
}

/** The op of a type, or an error that lists the known types. */
export function opDef(type: string, where = "op registry"): OpDef {
  const d = registry.get(type);
  if (d === undefined) throw errors.unknownName(where, "op type", type, opTypes());
  return d;
}

export function opTypes(): string[] {
  return [...registry.keys()].sort();
}

export function allOps(): OpDef[] {
  return [...registry.values()];
}

const size = (s: number[]) => s.reduce((a, b) => a * b, 1);

/** The per-channel axis of an op's weight in one call (0 when the op does not say). */
export function weightAxisOf(def: OpDef, attrs: Attrs): number {
  return typeof def.weightAxis === "function" ? def.weightAxis(attrs) : (def.weightAxis ?? 0);
}

/** The flops of one call: the op's own count, or the largest input's size. */
export function flopsOf(def: OpDef, inputs: number[][], weight: number[] | undefined, attrs: Attrs): number {
  return def.flops ? def.flops(inputs, weight, attrs) : Math.max(0, ...inputs.map(size));
}
