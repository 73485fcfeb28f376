/** Shared plumbing of the analysis tools: running a prepared model with taps and per-point settings. */
import * as tf from "@tensorflow/tfjs";
import type { Module } from "../nn/module";
import { isModelInput } from "../workflow/graph";
import { withPoints, type QuantRuntime, type Tap } from "../workflow/quantRuntime";
import { ortModel } from "../workflow/engine";
export { withPoints };
import { errors } from "../messages";

export type Data = tf.Tensor | tf.Tensor[];

export function argsOf(data: Data): tf.Tensor[] {
  return Array.isArray(data) ? data : [data];
}

/** Checks data against the input shapes recorded when the model was prepared. */
export function checkData(rt: QuantRuntime, data: Data, where: string): tf.Tensor[] {
  if (data === undefined || data === null)
    throw errors.invalidArgument(
      where,
      "no data given",
      "pass { data }: an input tensor shaped like the example input",
    );
  const args = argsOf(data);
  const seen = new Map<string, number[]>();
  for (const op of rt.graph.ops)
    for (const inp of op.inputs) if (isModelInput(inp.source) && !seen.has(inp.source)) seen.set(inp.source, inp.shape);
  args.forEach((t, i) => {
    if (!(t instanceof tf.Tensor)) throw errors.notATensor(where, `data input ${i}`, t);
    // the example input's own shape (an op may have read it reshaped)
    const want = rt.graph.inputShapes?.[i] ?? seen.get(`<input:${i}>`);
    if (want !== undefined && (want.length !== t.shape.length || want.some((d, k) => d !== t.shape[k]))) {
      throw errors.shapeMismatch(
        where,
        `data input ${i} has shape [${t.shape}]`,
        `[${want}], the shape the model was prepared with`,
        "pass data shaped like the example input",
      );
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
export function runModel(
  model: Module,
  rt: QuantRuntime,
  args: tf.Tensor[],
  taps: Tap[] = [],
  override: QuantRuntime["override"] = null,
): tf.Tensor[] {
  // a plain run (no taps, no override) goes to onnxruntime when the model runs there
  if (taps.length === 0 && override === null) {
    const fast = ortModel(model, rt, args);
    if (fast !== null) return fast.forward(args);
  }
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

/** Names the points that have no scale (never calibrated); empty when all are ready. */
export function uncalibrated(rt: QuantRuntime): string[] {
  return [...rt.fakeQuantizers()].filter(([, , fq]) => fq.scale() === null).map(([, , fq]) => fq.where);
}

export function pct(part: number, whole: number): string {
  return whole === 0 ? "0.00%" : `${((100 * part) / whole).toFixed(2)}%`;
}
