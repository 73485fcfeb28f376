/**
 * Bias correction (the reference toolchain's `bias_correction` optimization): quantizing a
 * Linear's or Conv's weight shifts the mean of its output by ΔW · E[x] (ΔW = the weight's
 * quantization error, E[x] = the mean of its input per channel over the calibration data). The
 * correction subtracts that shift from the op's bias, so the quantized op is right on average.
 * It runs on a calibrated model (the weight scales must be known) and changes its biases in place;
 * an op without a bias is listed and left alone.
 *
 * ```ts
 * qb.setFakeQuantize(calib, qb.FakeQuantState.VALIDATION);
 * qb.analysis.biasCorrection(calib, batches);   // a table: op, channels, largest correction
 * ```
 */
import * as tf from "@tensorflow/tfjs";
import { errors } from "../messages";
import type { Module } from "../nn/module";
import { fakeQuantize } from "../quant/fakeQuantize";
import { FakeQuantState } from "../quant/state";
import { makeTable, type Table } from "../util/table";
import type { Batch } from "../workflow/calibrate";
import { runtimeOf, type PreparedOp } from "../workflow/quantRuntime";
import { runModel, withPoints } from "./runner";

export interface BiasCorrectionRow {
  op_name: string;
  op_type: string;
  channels: number;
  /** Largest |correction| over the output channels. */
  max_correction: number;
  /** The correction's size against the bias's (mean |Δb| / mean |b|). */
  relative: number;
  corrected: boolean;
}

type Sums = { sum: Float64Array; count: number };

/** Per input channel sums of an op's input: the last axis for a Linear, axis 1 (NCHW) for a Conv. */
function accumulate(s: Sums | undefined, x: tf.Tensor, channelAxis: number): Sums {
  const c = x.shape[channelAxis];
  const out = s ?? { sum: new Float64Array(c), count: 0 };
  const perChannel = tf.tidy(() => {
    const axes = x.shape.map((_, i) => i).filter((i) => i !== channelAxis);
    return tf.sum(x, axes).dataSync();
  });
  perChannel.forEach((v, i) => (out.sum[i] += v));
  out.count += x.size / c;
  return out;
}

export function biasCorrection(model: Module, data: Batch[]): Table<BiasCorrectionRow> {
  const rt = runtimeOf(model, "biasCorrection");
  if (!Array.isArray(data) || data.length === 0)
    throw errors.invalidArgument("biasCorrection", "no data", "pass the calibration batches");
  const gemms = [...rt.ops.values()].filter(
    (o) => (o.info.type === "Linear" || o.info.type === "Conv2d") && o.weight !== null,
  );
  const missing = gemms.filter((o) => o.weight?.scale() === null).map((o) => o.info.name);
  if (missing.length > 0) throw errors.notCalibrated("biasCorrection", missing);
  const modules = new Map(model.namedModules());
  const sums = new Map<string, Sums>();
  const wanted = new Set(gemms.map((o) => o.info.name));
  const tap = (op: PreparedOp, role: string, _v: tf.Tensor, raw: tf.Tensor) => {
    if (role !== "input_0" || !wanted.has(op.info.name)) return;
    sums.set(op.info.name, accumulate(sums.get(op.info.name), raw, op.info.type === "Linear" ? raw.rank - 1 : 1));
  };
  for (const batch of data) {
    const args = Array.isArray(batch) ? batch : [batch];
    // the float run: E[x] is the mean of what the float model feeds the op
    const outs = withPoints(
      rt,
      FakeQuantState.FLOAT,
      (_o, _r, fq) => (fq.fakeQuantOverride = false),
      () => runModel(model, rt, args, [tap]),
    );
    tf.dispose(outs);
  }
  const rows: BiasCorrectionRow[] = gemms.map((op) => {
    const m = modules.get(op.info.modulePath) as
      (Module & { weight: tf.Variable; bias: tf.Variable | null }) | undefined;
    const s = sums.get(op.info.name);
    const fq = op.weight as NonNullable<PreparedOp["weight"]>;
    const w = m?.weight;
    if (m === undefined || w === undefined || s === undefined || m.bias === null || m.bias === undefined) {
      return {
        op_name: op.info.name,
        op_type: op.info.type,
        channels: 0,
        max_correction: 0,
        relative: 0,
        corrected: false,
      };
    }
    const mean = s.sum.map((v) => v / s.count);
    const scale = fq.scale() as Float64Array;
    const delta = tf.tidy(() => {
      const q = fakeQuantize(w, {
        scale: fq.axis === undefined ? scale[0] : scale,
        dtype: fq.dtype,
        axis: fq.axis,
        roundMode: fq.roundMode,
      });
      return tf.sub(q, w).dataSync() as Float32Array;
    });
    const shape = w.shape;
    const correction = new Float64Array(m.bias.shape[0]);
    if (op.info.type === "Linear") {
      // out_in: [out, in]; in_out: [in, out]
      const inOut = op.info.attrs.weightLayout === "in_out";
      const [outF, inF] = (inOut ? [shape[1], shape[0]] : [shape[0], shape[1]]) as [number, number];
      for (let o = 0; o < outF; o++)
        for (let i = 0; i < inF; i++) correction[o] += delta[inOut ? i * outF + o : o * inF + i] * mean[i];
    } else {
      // [out, in / groups, kh, kw]; each output channel reads its group's input channels
      const [outC, cpg, kh, kw] = shape as [number, number, number, number];
      const groups = Math.max(1, Math.round(mean.length / cpg));
      const perGroup = outC / groups;
      for (let o = 0; o < outC; o++) {
        const g = Math.floor(o / perGroup);
        for (let i = 0; i < cpg; i++) {
          let sum = 0;
          for (let k = 0; k < kh * kw; k++) sum += delta[(o * cpg + i) * kh * kw + k];
          correction[o] += sum * mean[g * cpg + i];
        }
      }
    }
    const b = m.bias.dataSync();
    const fixed = Float32Array.from(b, (v, o) => v - correction[o]);
    const meanAbs = (xs: ArrayLike<number>) =>
      Array.from(xs).reduce((a, v) => a + Math.abs(v), 0) / Math.max(1, xs.length);
    tf.tidy(() => (m.bias as tf.Variable).assign(tf.tensor(fixed, m.bias?.shape, "float32")));
    return {
      op_name: op.info.name,
      op_type: op.info.type,
      channels: correction.length,
      max_correction: Math.max(...Array.from(correction, Math.abs)),
      relative: meanAbs(correction) / Math.max(meanAbs(b), 1e-30),
      corrected: true,
    };
  });
  const done = rows.filter((r) => r.corrected).length;
  return makeTable(
    `Bias correction: ${done} of ${rows.length} Linear / Conv ops corrected for their weight's quantization (the rest have no bias)`,
    rows,
    ["op_name", "op_type", "channels", "max_correction", "relative", "corrected"],
  );
}
