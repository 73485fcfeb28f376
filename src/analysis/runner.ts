/** Shared plumbing of the analysis tools: running a prepared model with taps and per-point settings. */
import * as tf from "@tensorflow/tfjs";
import type { Module } from "../nn/module";
import type { FakeQuantizer } from "../quant/fakeQuantizer";
import { FakeQuantState } from "../quant/state";
import { isModelInput } from "../workflow/graph";
import type { PreparedOp, QuantRuntime, Tap, TapRole } from "../workflow/quantRuntime";
import { errors } from "../messages";

export type Data = tf.Tensor | tf.Tensor[];

export function argsOf(data: Data): tf.Tensor[] {
  return Array.isArray(data) ? data : [data];
}

/** Checks data against the input shapes recorded when the model was prepared. */
export function checkData(rt: QuantRuntime, data: Data, where: string): tf.Tensor[] {
  if (data === undefined || data === null) throw errors.coded("SHAPE_MISMATCH", `${where}: pass { data }: an input tensor shaped like the example input`);
  const args = argsOf(data);
  const seen = new Map<string, number[]>();
  for (const op of rt.graph.ops) for (const inp of op.inputs) if (isModelInput(inp.source) && !seen.has(inp.source)) seen.set(inp.source, inp.shape);
  args.forEach((t, i) => {
    if (!(t instanceof tf.Tensor)) throw errors.coded("INVALID_ARGUMENT", `${where}: data input ${i} is not a tensor`);
    // the example input's own shape (an op may have read it reshaped)
    const want = rt.graph.inputShapes?.[i] ?? seen.get(`<input:${i}>`);
    if (want !== undefined && (want.length !== t.shape.length || want.some((d, k) => d !== t.shape[k]))) {
      throw errors.coded("SHAPE_MISMATCH", `${where}: data input ${i} has shape [${t.shape}], the model was prepared with [${want}]; pass data shaped like the example input`);
    }
  });
  return args;
}

/** Every tensor in a model output, in order. */
export function flatOutputs(out: unknown): tf.Tensor[] {
  if (out instanceof tf.Tensor) return [out];
  if (Array.isArray(out)) return out.flatMap(flatOutputs);
  if (out !== null && typeof out === "object") return Object.values(out).flatMap(flatOutputs);
  return [];
}

/** Runs the model once with extra taps / an op override; returns its outputs (caller disposes). */
export function runModel(model: Module, rt: QuantRuntime, args: tf.Tensor[], taps: Tap[] = [], override: QuantRuntime["override"] = null): tf.Tensor[] {
  rt.taps.push(...taps);
  const before = rt.override;
  rt.override = override;
  try {
    return flatOutputs((model.forward as (...a: tf.Tensor[]) => unknown)(...args));
  } finally {
    rt.taps.splice(rt.taps.length - taps.length, taps.length);
    rt.override = before;
  }
}

interface Saved {
  fq: FakeQuantizer;
  state: FakeQuantState;
  override: boolean | null;
  scale: Float64Array | null;
}

/**
 * Runs `fn` with the runtime in `state` and every point's override set by `configure`, then puts
 * every state, override and scale back as they were, even when `fn` throws.
 */
export function withPoints<T>(rt: QuantRuntime, state: FakeQuantState, configure: (op: PreparedOp, role: TapRole, fq: FakeQuantizer) => void, fn: () => T): T {
  const saved: Saved[] = [];
  const rtState = rt.state;
  for (const [op, role, fq] of rt.fakeQuantizers()) {
    saved.push({ fq, state: fq.state, override: fq.fakeQuantOverride, scale: fq.scaleOverride });
    fq.state = state;
    configure(op, role, fq);
  }
  rt.state = state;
  try {
    return fn();
  } finally {
    rt.state = rtState;
    for (const s of saved) {
      s.fq.state = s.state;
      s.fq.fakeQuantOverride = s.override;
      s.fq.scaleOverride = s.scale;
    }
  }
}

/** Names the points that have no scale (never calibrated); empty when all are ready. */
export function uncalibrated(rt: QuantRuntime): string[] {
  return [...rt.fakeQuantizers()].filter(([, , fq]) => fq.scale() === null).map(([, , fq]) => fq.where);
}

export function pct(part: number, whole: number): string {
  return whole === 0 ? "0.00%" : `${((100 * part) / whole).toFixed(2)}%`;
}
