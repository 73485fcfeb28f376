/**
 * Per-op, per-attribute value statistics (the reference toolchain's *_statistic.txt): for each
 * op its inputs (as the op receives them), weight, bias and output — Min, Max, Mean, unbiased
 * Var, Shape — with the dtype and scale they are quantized with.
 */
import * as tf from "@tensorflow/tfjs";
import type { Module } from "../nn/module";
import type { FakeQuantizer } from "../quant/fakeQuantizer";
import { FakeQuantState } from "../quant/state";
import { FLOAT_CONSTANT, isModelInput } from "../workflow/graph";
import type { PreparedOp, QuantRuntime, TapRole } from "../workflow/quantRuntime";
import { runModel, withPoints } from "./runner";

export interface StatRow {
  Index: number;
  "Op Name": string;
  "Mod Name": string;
  Attr: string;
  Dtype: string;
  Scale: string;
  Min: number;
  Max: number;
  Mean: number;
  Var: number;
  Shape: string;
}

export const STAT_COLUMNS: (keyof StatRow)[] = [
  "Index",
  "Op Name",
  "Mod Name",
  "Attr",
  "Dtype",
  "Scale",
  "Min",
  "Max",
  "Mean",
  "Var",
  "Shape",
];

export function formatScale(s: Float64Array | null): string {
  if (s === null) return "";
  if (s.length === 1) return s[0].toPrecision(6);
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of s) {
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  return `per-channel[${s.length}] ${lo.toPrecision(4)}..${hi.toPrecision(4)}`;
}

/** The fake-quantizer that decides how input i of `op` is quantized (its own, or its producer's output). */
export function inputQuantizer(rt: QuantRuntime, op: PreparedOp, i: number): FakeQuantizer | null {
  const own = op.inputs[i];
  if (own) return own;
  const src = op.info.inputs[i]?.source;
  if (src === undefined || isModelInput(src) || src === FLOAT_CONSTANT) return null;
  return rt.outputQuantizer(src);
}

function quantizerFor(rt: QuantRuntime, op: PreparedOp, role: TapRole): FakeQuantizer | null {
  if (role === "weight") return op.weight;
  if (role === "output") return rt.outputQuantizer(op.info.name);
  if (role.startsWith("input_")) return inputQuantizer(rt, op, Number(role.slice(6)));
  return null;
}

function attrName(op: PreparedOp, role: TapRole): string {
  if (role.startsWith("input_")) return op.info.inputs.length === 1 ? "input" : role;
  if (role.startsWith("param_")) return op.info.paramShapes.length === 1 ? "bias" : `bias_${role.slice(6)}`;
  return role;
}

/** Moments of a tensor: min, max, mean, unbiased variance. */
export function moments(t: tf.Tensor): [number, number, number, number] {
  return tf.tidy(() => {
    const x = tf.cast(tf.reshape(t, [-1]), "float32");
    const n = x.size;
    const { mean, variance } = tf.moments(x);
    const m = mean.dataSync()[0];
    const v = variance.dataSync()[0] * (n > 1 ? n / (n - 1) : 1);
    return [tf.min(x).dataSync()[0], tf.max(x).dataSync()[0], m, v];
  });
}

/**
 * Runs `args` through a prepared model in `state` (FLOAT for the baseline, VALIDATION for the
 * quantized model) and returns one row per op attribute, in execution order.
 */
export function collectStatistics(
  model: Module,
  rt: QuantRuntime,
  args: tf.Tensor[],
  state: FakeQuantState,
): StatRow[] {
  const rows: StatRow[] = [];
  const quantized = state !== FakeQuantState.FLOAT;
  const tap = (op: PreparedOp, role: TapRole, value: tf.Tensor) => {
    const fq = quantized ? quantizerFor(rt, op, role) : null;
    const [min, max, mean, variance] = moments(value);
    rows.push({
      Index: rows.length,
      "Op Name": op.info.type,
      "Mod Name": op.info.name,
      Attr: attrName(op, role),
      Dtype: fq ? fq.dtype.name : "float32",
      Scale: fq ? formatScale(fq.scale()) : "",
      Min: min,
      Max: max,
      Mean: mean,
      Var: variance,
      Shape: `[${value.shape.join(", ")}]`,
    });
  };
  withPoints(
    rt,
    state,
    () => {},
    () => tf.dispose(runModel(model, rt, args, [tap])),
  );
  return rows;
}
