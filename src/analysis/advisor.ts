/**
 * Advice on abnormal layers, each with a fix: values the scale cannot cover (clipping), int8
 * points whose values reach 128 or more (a step of 1 or coarser), NaN/Inf, model outputs that are
 * not kept in high precision, and float inputs far from symmetric (half the code range wasted).
 */
import * as tf from "@tensorflow/tfjs";
import type { Module } from "../nn/module";
import { FakeQuantState } from "../quant/state";
import type { PreparedOp, QuantRuntime, TapRole } from "../workflow/quantRuntime";
import { runModel, withPoints } from "./runner";

export interface AdviceRow {
  op_name: string;
  op_type: string;
  attr: string;
  issue: string;
  detail: string;
  fix: string;
}

/** Fraction of clipped values above which a range counts as not covered. */
export const CLIPPED_FRACTION = 0.005;

export function advise(model: Module, rt: QuantRuntime, args: tf.Tensor[]): AdviceRow[] {
  const rows: AdviceRow[] = [];
  const add = (op: PreparedOp, attr: string, issue: string, detail: string, fix: string) =>
    rows.push({ op_name: op.info.name, op_type: op.info.type, attr, issue, detail, fix });
  const tap = (op: PreparedOp, role: TapRole, _value: tf.Tensor, raw: tf.Tensor) => {
    const fq = role === "output" ? op.output : role === "weight" ? op.weight : null;
    const [mn, mx, finite] = tf.tidy(() => [
      tf.min(raw).dataSync()[0],
      tf.max(raw).dataSync()[0],
      tf.all(tf.isFinite(raw)).dataSync()[0],
    ]);
    if (!finite) {
      add(
        op,
        role,
        "NaN/Inf",
        `${role} holds NaN or Inf values`,
        "check the data and the ops before it (division by zero, log of 0, overflow)",
      );
      return;
    }
    if (op.info.type === "QuantStub" && role.startsWith("input_")) {
      const span = mx - mn;
      const offset = span > 0 ? Math.abs(mx + mn) / span : 0;
      if (offset > 0.5) {
        add(
          op,
          "input",
          "input far from symmetric",
          `range [${mn.toPrecision(4)}, ${mx.toPrecision(4)}]: symmetric quantization leaves ${(offset * 50).toFixed(0)}% of the codes unused`,
          "normalise the input around 0 before the QuantStub (subtract its mean), or use a wider dtype",
        );
      }
    }
    if (fq === null) return;
    const scale = fq.scale();
    if (scale === null) return;
    const top = Math.max(...scale) * (fq.dtype.qmax + 0.5);
    const peak = Math.max(-mn, mx);
    // MSE calibration clips a little by design: flag only ranges clearly not covered
    const clipped =
      fq.axis === undefined && peak > top
        ? tf.tidy(() => tf.mean(tf.cast(tf.greater(tf.abs(raw), top), "float32")).dataSync()[0])
        : 0;
    if (clipped > CLIPPED_FRACTION || peak > 2 * top) {
      add(
        op,
        role,
        "range not covered",
        `|x| reaches ${peak.toPrecision(4)} but ${fq.dtype.name} at scale ${scale[0].toPrecision(4)} covers ${top.toPrecision(4)}; ${(clipped * 100).toFixed(3)}% clipped`,
        "if the clipped values matter, use MinMaxObserver for this op or a larger fixed scale; if they are outliers, keep it",
      );
    }
    if (fq.dtype.name === "qint8" && peak >= 128) {
      add(
        op,
        role,
        "qint8 with |x| >= 128",
        `|x| reaches ${peak.toPrecision(4)}: one int8 step is ${(peak / 127.5).toPrecision(3)} or more`,
        `quantize ${op.info.name} ${role} in int16 (getQconfig({ ${role === "weight" ? "weightDtype" : "outDtype"}: qint16 }))`,
      );
    }
  };
  withPoints(
    rt,
    FakeQuantState.VALIDATION,
    () => {},
    () => tf.dispose(runModel(model, rt, args, [tap])),
  );
  for (const name of rt.graph.outputs) {
    const op = rt.ops.get(name);
    if (op === undefined) continue;
    const producers =
      op.info.type === "DeQuantStub"
        ? op.info.inputs.map((i) => rt.ops.get(i.source)).filter((p): p is PreparedOp => p !== undefined)
        : [op];
    for (const p of producers) {
      if (p.output !== null) {
        add(
          p,
          "output",
          "model output not high precision",
          `${p.info.name} feeds a model output but is quantized to ${p.output.dtype.name}`,
          `keep it in float: ModuleNameQconfigSetter({ '${p.info.name}': getQconfig({ outDtype: null }) })`,
        );
      }
    }
  }
  return rows;
}
