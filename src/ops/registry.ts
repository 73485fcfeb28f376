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
  /** Each output element depends on the same element of the (one) input alone: a layout change commutes with it. */
  elementwise?: boolean;
  /**
   * PyTorch's face of a one-input op: `npm run gen` writes its `qb.F` function and `qb.nn` layer
   * (src/nn/generated/) from this, so they are never written by hand.
   */
  torch?: TorchApi;
  /**
   * An ONNX op that maps one-to-one onto this one: the importer's handler is built from it (the
   * all-constant path calls `compute`). Ops whose import needs more (opset rules, fusions) keep a
   * handler in src/io/onnx/handlers/.
   */
  onnxImport?: OnnxImport;
}

/** An argument of a generated `qb.F` function / `qb.nn` constructor: one attribute of the op. */
export interface TorchArg {
  /** The attribute's name (camelCase of PyTorch's argument). */
  name: string;
  /** Its default (PyTorch's); none: the argument is required. */
  default?: number | string;
  /** TypeScript type when not a plain number (e.g. a string union); default `number`. */
  type?: string;
}

export interface TorchApi {
  /** `qb.F` name (camelCase of PyTorch's); the op's name in a model is its snake_case (`leaky_relu`). */
  fn: string;
  /** `qb.nn` class (PyTorch's name), if PyTorch has one. */
  module?: string;
  /** Attributes, in PyTorch's argument order. */
  args?: TorchArg[];
  /** `qb.F` takes the arguments one by one (`leakyRelu(x, 0.1)`) or in an options object (`softplus(x, { beta })`). */
  style?: "positional" | "options";
}

export interface OnnxImport {
  /** The ONNX op type. */
  op: string;
  /** attribute ← [ONNX attribute, its default in ONNX]. */
  attrs?: Record<string, [onnxName: string, fallback: number | string]>;
  /** Attributes the ONNX op fixes (ONNX's Softplus is PyTorch's with beta 1, threshold 20). */
  fixed?: Attrs;
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

/** The name an op takes in a model when the caller gives none: the snake_case of its `qb.F` name. */
export function callName(def: OpDef): string {
  return def.torch ? def.torch.fn.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`) : def.type.toLowerCase();
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
