/**
 * The traced graph of a model: one record per op call of the example forward, in execution
 * (topological) order, with where each input came from and who consumes each output.
 */
import * as tf from "@tensorflow/tfjs";
import type { OpCall, OpInterceptor } from "../nn/runtime";
import { findOp } from "../ops";
import { currentForward } from "../nn/forwardContext";

/** Source of an op input: another op's name, a model input (`<input:0>`), or a float constant. */
export const FLOAT_CONSTANT = "<float>";

export function modelInput(i: number): string {
  return `<input:${i}>`;
}

export function isModelInput(source: string): boolean {
  return source.startsWith("<input:");
}

export interface OpInfo {
  name: string;
  type: string;
  modulePath: string;
  /** `untraced`: a float tensor that is neither the model's own (parameter, buffer) nor an op output — made by a raw tf op. */
  inputs: { source: string; shape: number[]; untraced?: boolean | undefined }[];
  outputShape: number[];
  weightShape?: number[] | undefined;
  paramShapes: number[][];
  flops: number;
  attrs: Record<string, unknown>;
  /** Names of the ops that read this op's output (filled after tracing). */
  consumers: string[];
  /** For an imported graph: the file's node this op computes (part of), and its ONNX op type. */
  onnxNode?: string | undefined;
  onnxType?: string | undefined;
}

export interface Graph {
  ops: OpInfo[];
  byName: Map<string, OpInfo>;
  /** Ops whose output the model returns. */
  outputs: string[];
  /** Shapes of the example input's tensors, by argument index (an op may read one reshaped). */
  inputShapes: (number[] | null)[];
}

/** Records op calls during the one forward `prepare` runs on the example input. */
export class Tracer implements OpInterceptor {
  readonly ops: OpInfo[] = [];
  private readonly producers = new Map<object, string>();
  private outputs: string[] = [];
  private inputShapes: (number[] | null)[] = [];

  /** `own`: the data ids of the model's own tensors (parameters, buffers), which are constants, not cuts. */
  constructor(private readonly own: Set<object> = new Set()) {}

  constant(t: tf.Tensor): void {
    this.own.add(t.dataId);
  }

  begin(args: unknown[]): void {
    this.inputShapes = args.map((v) => (v instanceof tf.Tensor ? v.shape.slice() : null));
    args.forEach((v, i) => {
      if (v instanceof tf.Tensor) this.producers.set(v.dataId, modelInput(i));
    });
  }

  runOp(call: OpCall, compute: (i: tf.Tensor[], w: tf.Tensor | undefined, p: tf.Tensor[]) => tf.Tensor): tf.Tensor {
    const inputs = call.inputs.map((t) => {
      const source = this.producers.get(t.dataId);
      if (source !== undefined) return { source, shape: t.shape.slice() };
      return this.own.has(t.dataId)
        ? { source: FLOAT_CONSTANT, shape: t.shape.slice() }
        : { source: FLOAT_CONSTANT, shape: t.shape.slice(), untraced: true };
    });
    const out = compute(call.inputs, call.weight, call.params);
    this.producers.set(out.dataId, call.name);
    this.ops.push({
      name: call.name,
      type: call.type,
      modulePath: call.modulePath,
      inputs,
      outputShape: out.shape.slice(),
      weightShape: call.weight?.shape.slice(),
      paramShapes: call.params.map((p) => p.shape.slice()),
      flops: call.flops,
      attrs: call.attrs,
      consumers: [],
      onnxNode: currentForward()?.source?.node,
      onnxType: currentForward()?.source?.opType,
    });
    return out;
  }

  end(result: unknown): void {
    const found: string[] = [];
    const visit = (v: unknown): void => {
      if (v instanceof tf.Tensor) {
        const p = this.producers.get(v.dataId);
        if (p !== undefined && !isModelInput(p)) found.push(p);
      } else if (Array.isArray(v)) v.forEach(visit);
      else if (v !== null && typeof v === "object") Object.values(v).forEach(visit);
    };
    visit(result);
    this.outputs = found;
  }

  graph(): Graph {
    const byName = new Map(this.ops.map((o) => [o.name, o]));
    for (const op of this.ops) {
      for (const inp of op.inputs) byName.get(inp.source)?.consumers.push(op.name);
    }
    return { ops: this.ops, byName, outputs: this.outputs, inputShapes: this.inputShapes };
  }
}

/** GEMM-like ops (weights per channel, int32 accumulation), by the registry's quantization role. */
export function isGemm(type: string): boolean {
  return findOp(type)?.role === "gemm";
}
