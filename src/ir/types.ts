/**
 * quantbook's IR: a versioned, JSON-serialisable description of a calibrated model — nodes in
 * execution (topological) order with op type, module path, where each input comes from,
 * shapes, dtypes, scales (an array per channel), integer weights, float biases, attributes.
 * `export` writes it, `convert` and `perf` read it, `io.saveIr` / `io.loadIr` store it.
 */
import type { DTypeName } from "../quant/dtypes";

export const IR_FORMAT = "quantbook-ir";
export const IR_VERSION = 1;

/** How a tensor is quantized: dtype and scale(s); scale is null for float32. */
export interface IrQuant {
  dtype: DTypeName;
  scale: number[] | null;
  /** Channel axis when `scale` has one entry per channel. */
  axis?: number;
}

export interface IrInput {
  /** Producing node, a model input `<input:i>`, or `<float>` for a constant. */
  source: string;
  shape: number[];
  /** As the op receives it (after `requant` when the op re-quantizes its input). */
  quant: IrQuant;
  /** True when the op re-quantizes this input to its own dtype/scale (qconfig input). */
  requant: boolean;
}

export interface IrNode {
  name: string;
  type: string;
  module: string;
  inputs: IrInput[];
  output: { shape: number[]; quant: IrQuant };
  /** Integer codes when quantized, float values when float32; row-major. */
  weight?: { shape: number[]; quant: IrQuant; data: number[] };
  /** Float parameters (biases), row-major. */
  params: { shape: number[]; data: number[] }[];
  /** Float data of `<float>` inputs, by input index. */
  constants: { input: number; data: number[] }[];
  attrs: Record<string, unknown>;
  flops: number;
}

export interface Ir {
  format: typeof IR_FORMAT;
  version: number;
  march: string;
  inputs: { name: string; shape: number[] }[];
  /** Names of the nodes whose outputs the model returns. */
  outputs: string[];
  nodes: IrNode[];
}
