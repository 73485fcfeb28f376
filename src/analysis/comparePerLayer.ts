/**
 * Per-layer comparison: every op's output in the baseline (float) model and in the quantized
 * model, run separately on the same data, so errors accumulate as they do on the chip.
 */
import * as tf from "@tensorflow/tfjs";
import type { Module } from "../nn/module";
import { FakeQuantState } from "../quant/state";
import type { PreparedOp, QuantRuntime, TapRole } from "../workflow/quantRuntime";
import { metric } from "./metrics";
import { runModel, withPoints } from "./runner";
import { formatScale, moments } from "./statistics";

export interface LayerRow {
  mod_name: string;
  base_op_type: string;
  analy_op_type: string;
  shape: string;
  quant_dtype: string;
  qscale: string;
  Cosine: number;
  L1: number;
  Atol: number;
  max_qscale_diff: number | null;
  base_min: number;
  base_max: number;
  base_mean: number;
  analy_min: number;
  analy_max: number;
  analy_mean: number;
}

function outputs(model: Module, rt: QuantRuntime, args: tf.Tensor[], state: FakeQuantState): Map<string, tf.Tensor> {
  const got = new Map<string, tf.Tensor>();
  const tap = (op: PreparedOp, role: TapRole, value: tf.Tensor) => {
    if (role === "output") got.set(op.info.name, tf.keep(tf.clone(value)));
  };
  withPoints(
    rt,
    state,
    () => {},
    () => tf.dispose(runModel(model, rt, args, [tap])),
  );
  return got;
}

export function comparePerLayer(
  base: { model: Module; rt: QuantRuntime },
  analysis: { model: Module; rt: QuantRuntime },
  args: tf.Tensor[],
): LayerRow[] {
  const b = outputs(base.model, base.rt, args, FakeQuantState.FLOAT);
  const a = outputs(analysis.model, analysis.rt, args, FakeQuantState.VALIDATION);
  try {
    const rows: LayerRow[] = [];
    for (const op of analysis.rt.ops.values()) {
      const name = op.info.name;
      const bo = b.get(name);
      const ao = a.get(name);
      if (bo === undefined || ao === undefined) continue;
      const fq = analysis.rt.outputQuantizer(name);
      const scale = fq?.scale() ?? null;
      const atol = tf.tidy(() => tf.max(tf.abs(tf.sub(bo, ao))).dataSync()[0]);
      const [bmin, bmax, bmean] = moments(bo);
      const [amin, amax, amean] = moments(ao);
      rows.push({
        mod_name: name,
        base_op_type: base.rt.ops.get(name)?.info.type ?? "",
        analy_op_type: op.info.type,
        shape: `[${ao.shape.join(", ")}]`,
        quant_dtype: fq ? fq.dtype.name : "float32",
        qscale: formatScale(scale),
        Cosine: metric("Cosine", bo, ao),
        L1: metric("L1", bo, ao),
        Atol: atol,
        max_qscale_diff: scale !== null && scale.length === 1 ? atol / scale[0] : null,
        base_min: bmin,
        base_max: bmax,
        base_mean: bmean,
        analy_min: amin,
        analy_max: amax,
        analy_mean: amean,
      });
    }
    return rows;
  } finally {
    b.forEach((t) => t.dispose());
    a.forEach((t) => t.dispose());
  }
}
