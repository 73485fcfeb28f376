/**
 * Scale explorer: for one op's output, try scales — from observers (MSE, MinMax, Percentile),
 * fixed values (the article's 7/32767) or a sweep — and report for each the fraction of values
 * rounded to zero, the fraction clipped, the op's own error and the model-output error against
 * float (the rest of the model quantized as calibrated).
 *
 * ```ts
 * const rows = qb.analysis.scaleExplorer(calib, "gate_mul", { data: x,
 *   settings: [{ observer: qb.quant.MSEObserver }, { scale: 7 / 32767 }] });
 * ```
 */
import * as tf from "@tensorflow/tfjs";
import type { Module } from "../nn/module";
import { fakeQuantize } from "../quant/fakeQuantize";
import { MinMaxObserver } from "../quant/observers/minmax";
import { MSEObserver } from "../quant/observers/mse";
import type { ObserverFactory } from "../quant/observers/observer";
import { PercentileObserver } from "../quant/observers/percentile";
import { FakeQuantState } from "../quant/state";
import { runtimeOf, type PreparedOp, type TapRole } from "../workflow/quantRuntime";
import { metric } from "./metrics";
import { checkData, runModel, uncalibrated, withPoints, type Data } from "./runner";
import { errors } from "../messages";
import { makeTable, type Table } from "../util/table";

export interface ScaleSetting {
  label?: string;
  /** A fixed scale. */
  scale?: number;
  /** An observer run on the op's float output. */
  observer?: ObserverFactory;
}

export interface ScaleRow {
  setting: string;
  scale: number;
  /** Nonzero values that quantize to 0. */
  zero_fraction: number;
  /** Values beyond the dtype's range at this scale. */
  clipped_fraction: number;
  /** RMS error of the op's output. */
  op_rmse: number;
  /** Mean |output - float output| of the whole model. */
  output_l1: number;
}

function labelOf(s: ScaleSetting): string {
  if (s.label) return s.label;
  if (s.observer) return s.observer.observerName;
  return `fixed ${s.scale}`;
}

/** The default settings: the three observers, plus 7/32767 for an int16 output. */
export function defaultSettings(dtypeName: string): ScaleSetting[] {
  const out: ScaleSetting[] = [
    { observer: MSEObserver },
    { observer: MinMaxObserver },
    { observer: PercentileObserver },
  ];
  if (dtypeName === "qint16") out.push({ label: "fixed 7/32767", scale: 7 / 32767 });
  return out;
}

export function scaleExplorer(
  model: Module,
  opName: string,
  opts: { data: Data; settings?: ScaleSetting[]; sweep?: number[] },
): ScaleRow[] & Table<ScaleRow> {
  const rt = runtimeOf(model, "scaleExplorer");
  const op = rt.ops.get(opName);
  if (op === undefined) {
    throw errors.unknownName("scaleExplorer", "op", opName, rt.ops.keys());
  }
  const fq = op.output;
  if (fq === null)
    throw errors.invalidArgument(
      `scaleExplorer`,
      `${opName} (${op.info.type}) has a high-precision output`,
      `there is no scale to explore`,
    );
  const missing = uncalibrated(rt);
  if (missing.length > 0) throw errors.notCalibrated("scaleExplorer", missing);
  const args = checkData(rt, opts.data, "scaleExplorer");
  const settings: ScaleSetting[] = [
    ...(opts.settings ?? defaultSettings(fq.dtype.name)),
    ...(opts.sweep ?? []).map((scale) => ({ scale, label: `sweep ${scale.toPrecision(4)}` })),
  ];

  let raw: tf.Tensor | null = null;
  const grab = (o: PreparedOp, role: TapRole, _v: tf.Tensor, r: tf.Tensor) => {
    if (o === op && role === "output") raw = tf.keep(tf.clone(r));
  };
  const refs = withPoints(
    rt,
    FakeQuantState.FLOAT,
    (_o, _r, f) => (f.fakeQuantOverride = false),
    () => runModel(model, rt, args, [grab]),
  );
  const x = raw as unknown as tf.Tensor;
  try {
    const rows = settings.map((s) => {
      let scale: number;
      if (s.observer) {
        const obs = s.observer.create({ dtype: fq.dtype });
        obs.observe(x);
        scale = (obs.scale() as Float64Array)[0];
      } else if (s.scale !== undefined && s.scale > 0) scale = s.scale;
      else
        throw errors.invalidArgument(
          "scaleExplorer",
          `setting ${JSON.stringify(s)} has neither a scale > 0 nor an observer`,
          "give each setting { scale } or { observer }",
        );
      const { qmax } = fq.dtype;
      const [zero, clipped, rmse] = tf.tidy(() => {
        const a = tf.abs(x);
        const q = fakeQuantize(x, { scale, dtype: fq.dtype });
        return [
          tf.mean(tf.cast(tf.logicalAnd(tf.greater(a, 0), tf.equal(q, 0)), "float32")).dataSync()[0],
          tf.mean(tf.cast(tf.greater(a, (qmax + 0.5) * scale), "float32")).dataSync()[0],
          Math.sqrt(tf.mean(tf.squaredDifference(q, x)).dataSync()[0]),
        ];
      });
      const outs = withPoints(
        rt,
        FakeQuantState.VALIDATION,
        (_o, _r, f) => {
          if (f === fq) f.scaleOverride = Float64Array.of(scale);
        },
        () => runModel(model, rt, args),
      );
      const l1 = outs.reduce((acc, o, i) => acc + metric("L1", refs[i], o), 0) / outs.length;
      tf.dispose(outs);
      return {
        setting: labelOf(s),
        scale,
        zero_fraction: zero,
        clipped_fraction: clipped,
        op_rmse: rmse,
        output_l1: l1,
      };
    });
    const caption = `Scales explored for ${opName} (${fq.dtype.name}): products rounded to zero, clipped, op RMSE and output L1`;
    const table = makeTable(caption, rows, [
      "setting",
      "scale",
      "zero_fraction",
      "clipped_fraction",
      "op_rmse",
      "output_l1",
    ]);
    // the rows themselves (filter them, chart them), which also display as the table
    return Object.assign([...rows], table);
  } finally {
    tf.dispose(refs);
    x.dispose();
  }
}
