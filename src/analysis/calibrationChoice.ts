/**
 * Which calibration method suits this model: each candidate — the reference toolchain's `max`
 * (MinMax), `max` with a percentile (99.995), `kl` and quantbook's MSE search — calibrates the
 * model on the same data, and each is measured by its output against float (cosine first, then
 * SQNR); the best is chosen and the table says by how much. The reference toolchain's `default`
 * calibration type searches max / percentile / kl in the same spirit.
 *
 * ```ts
 * const choice = await qb.analysis.chooseCalibration(model, batches, { actDtype: qb.qint8 });
 * choice;                       // method, cosine, mse, sqnr_db, calibration ms, chosen
 * qb.prepare(model, x, { qconfigSetter: [choice.setter] });
 * ```
 */
import { getMarch, type March } from "../march/march";
import { errors } from "../messages";
import type { Module } from "../nn/module";
import { qint16, qint8, type QuantDType } from "../quant/dtypes";
import { KLObserver, MinMaxObserver, MSEObserver, PercentileObserver, type ObserverFactory } from "../quant/observers";
import { FakeQuantState } from "../quant/state";
import { makeTable, type Table } from "../util/table";
import { calibrate, type Batch } from "../workflow/calibrate";
import { prepare } from "../workflow/prepare";
import { calibrationTemplate, type QconfigSetter } from "../workflow/qconfigSetters";
import { setFakeQuantize } from "../workflow/setFakeQuantize";
import { evaluate } from "./evaluate";

export type CalibrationMethod = "max" | "percentile" | "kl" | "mse";

const OBSERVERS: Record<CalibrationMethod, ObserverFactory> = {
  max: MinMaxObserver,
  percentile: PercentileObserver.withPercentile(99.995),
  kl: KLObserver,
  mse: MSEObserver,
};

export interface CalibrationChoiceRow {
  method: CalibrationMethod;
  observer: string;
  cosine: number;
  mse: number;
  sqnr_db: number;
  calibration_ms: number;
  chosen: boolean;
}

export interface CalibrationChoice extends Table<CalibrationChoiceRow> {
  chosen: CalibrationMethod;
  /** The template with the chosen observer on activations (per-channel MinMax weights). */
  setter: QconfigSetter;
}

export interface CalibrationChoiceOptions {
  march?: March;
  /** Weight dtype (default qint8). */
  weightDtype?: QuantDType;
  /** Activation dtype (default qint8: the methods differ most there). */
  actDtype?: QuantDType;
  candidates?: CalibrationMethod[];
}

export async function chooseCalibration(
  model: Module,
  data: Batch[],
  opts: CalibrationChoiceOptions = {},
): Promise<CalibrationChoice> {
  const candidates = opts.candidates ?? (["max", "percentile", "kl", "mse"] as CalibrationMethod[]);
  const bad = candidates.filter((c) => !(c in OBSERVERS));
  if (bad.length > 0)
    throw errors.invalidArgument(
      "chooseCalibration",
      `unknown method ${bad.join(", ")}`,
      "choose from max, percentile, kl, mse",
    );
  if (!Array.isArray(data) || data.length === 0)
    throw errors.invalidArgument("chooseCalibration", "no data", "pass one or more input batches");
  // the chip goes to prepare: the global one is never swapped
  const march = opts.march ?? getMarch();
  if (march === null)
    throw errors.wrongState("chooseCalibration", "no target chip", "pass { march } or call qb.setMarch first");
  const weightDtype = opts.weightDtype ?? qint8;
  const actDtype = opts.actDtype ?? qint8;
  const tag = (d: QuantDType) => (d === qint16 ? "16" : "8");
  const rows: CalibrationChoiceRow[] = [];
  const setters = new Map<CalibrationMethod, QconfigSetter>();
  for (const method of candidates) {
    const setter = calibrationTemplate(
      `${method} calibration (int${tag(weightDtype)} weights, int${tag(actDtype)} activations)`,
      weightDtype,
      actDtype,
      OBSERVERS[method],
    );
    setters.set(method, setter);
    const first = data[0];
    const calib = prepare(model.eval(), Array.isArray(first) ? first : [first], {
      qconfigSetter: [setter],
      warn: false,
      march,
    });
    try {
      setFakeQuantize(calib, FakeQuantState.CALIBRATION);
      const t0 = performance.now();
      await calibrate(calib, data);
      const ms = performance.now() - t0;
      setFakeQuantize(calib, FakeQuantState.VALIDATION);
      const ev = await evaluate(calib, data);
      // over all outputs: the worst cosine, the summed error
      const cosine = Math.min(...ev.rows.map((r) => r.cosine));
      rows.push({
        method,
        observer: OBSERVERS[method].observerName,
        cosine,
        mse: ev.rows.reduce((a, r) => a + r.mse, 0),
        sqnr_db: Math.min(...ev.rows.map((r) => r.sqnr_db)),
        calibration_ms: ms,
        chosen: false,
      });
    } finally {
      calib.dispose();
    }
  }
  const best = rows.reduce((a, r) => (r.cosine > a.cosine || (r.cosine === a.cosine && r.sqnr_db > a.sqnr_db) ? r : a));
  best.chosen = true;
  const runnerUp = rows.filter((r) => r !== best).sort((a, b) => b.cosine - a.cosine)[0];
  const why = runnerUp
    ? `output cosine ${best.cosine.toFixed(6)} against ${runnerUp.method}'s ${runnerUp.cosine.toFixed(6)} (SQNR ${best.sqnr_db.toFixed(1)} vs ${runnerUp.sqnr_db.toFixed(1)} dB)`
    : `the only candidate (cosine ${best.cosine.toFixed(6)})`;
  const table = makeTable(`Calibration methods on ${data.length} batches: ${best.method} chosen — ${why}`, rows, [
    "method",
    "observer",
    "cosine",
    "mse",
    "sqnr_db",
    "calibration_ms",
    "chosen",
  ]);
  return { ...table, chosen: best.method, setter: setters.get(best.method) as QconfigSetter };
}
