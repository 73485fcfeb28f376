/**
 * The precision-debug entry point, after the reference toolchain's QuantAnalysis: compares a
 * float baseline with a calibrated (or QAT) model. Every method returns rows, a danfo
 * DataFrame and the text it writes to `outDir` (when given) in the reference file layout.
 *
 * ```ts
 * const qa = new qb.QuantAnalysis(floatModel, calib, { outDir: "debug" });
 * qa.sensitivity({ data: x }).toDataFrame();     // worst first
 * qa.statistics({ data: x });                    // baseline_statistic.txt, analysis_statistic.txt
 * ```
 */
import * as tf from "@tensorflow/tfjs";
import { mkdirSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { makeTable, type Table } from "../util/table";
import type { Module } from "../nn/module";
import { INTERCEPTOR } from "../nn/runtime";
import { FakeQuantState } from "../quant/state";
import type { ProgressCallback } from "../util/progress";
import { prepare } from "../workflow/prepare";
import { QuantRuntime, runtimeOf } from "../workflow/quantRuntime";
import { advise, type AdviceRow } from "./advisor";
import { comparePerLayer, type LayerRow } from "./comparePerLayer";
import { checkMetric, largerIsWorse, metric, type Metric } from "./metrics";
import { checkData, uncalibrated, withPoints, runModel, type Data } from "./runner";
import { runSensitivity, type SensitivityRow } from "./sensitivity";
import { cumulativePlot, runCumulative, type CumulativeRow } from "./cumulative";
import { collectStatistics, STAT_COLUMNS, type StatRow } from "./statistics";
import { errors } from "../messages";

export type { Table };

export interface SensitivityResult extends Table<SensitivityRow> {
  metric: Metric;
  elapsedMs: number;
}

export interface BadCaseRow {
  output: number;
  worst_batch: number;
  metric: string;
  value: number;
}

export class QuantAnalysis {
  private readonly rt: QuantRuntime;
  private baselineRun: { model: Module; rt: QuantRuntime } | null = null;
  /** The data of the last call, for advisor() without arguments. */
  private lastData: Data | null = null;
  readonly outDir: string | undefined;
  readonly onProgress: ProgressCallback | undefined;

  constructor(
    readonly baseline: Module,
    readonly analysis: Module,
    opts: { outDir?: string; onProgress?: ProgressCallback } = {},
  ) {
    this.rt = runtimeOf(analysis, "QuantAnalysis (analysis model)");
    const missing = uncalibrated(this.rt);
    if (missing.length > 0) {
      throw errors.notCalibrated("QuantAnalysis", missing);
    }
    if (baseline === null || typeof baseline !== "object" || typeof baseline.namedModules !== "function") {
      throw errors.coded("INVALID_ARGUMENT", "QuantAnalysis: the baseline must be a qb.nn.Module (the float model)");
    }
    this.outDir = opts.outDir;
    this.onProgress = opts.onProgress;
  }

  private write(file: string, text: string): void {
    if (this.outDir === undefined) return;
    mkdirSync(this.outDir, { recursive: true });
    writeFileSync(path.join(this.outDir, file), text);
  }

  private data(given: Data | undefined, where: string): tf.Tensor[] {
    const args = checkData(this.rt, given ?? (this.lastData as Data), where);
    this.lastData = given ?? this.lastData;
    return args;
  }

  /** The baseline as a prepared float model (all ops named like the analysis model's). */
  private base(args: tf.Tensor[]): { model: Module; rt: QuantRuntime } {
    if (this.baselineRun !== null) return this.baselineRun;
    const own = (this.baseline as unknown as Record<symbol, unknown>)[INTERCEPTOR];
    if (own instanceof QuantRuntime) this.baselineRun = { model: this.baseline, rt: own };
    else {
      const model = prepare(this.baseline, args, { qconfigSetter: [] });
      this.baselineRun = { model, rt: runtimeOf(model, "QuantAnalysis") };
    }
    return this.baselineRun;
  }

  /** Per-op statistics of both models; writes baseline_statistic.txt and analysis_statistic.txt. */
  statistics(opts: { data: Data }): { baseline: Table<StatRow>; analysis: Table<StatRow> } {
    const args = this.data(opts?.data, "QuantAnalysis.statistics");
    const b = this.base(args);
    const baseline = makeTable("Statistics of the baseline (float) model", collectStatistics(b.model, b.rt, args, FakeQuantState.FLOAT), STAT_COLUMNS);
    const analysis = makeTable("Statistics of the analysis (quantized) model", collectStatistics(this.analysis, this.rt, args, FakeQuantState.VALIDATION), STAT_COLUMNS);
    this.write("baseline_statistic.txt", baseline.text);
    this.write("analysis_statistic.txt", analysis.text);
    return { baseline, analysis };
  }

  /** Sensitivity table, worst first; writes <metric>_sensitive_ops.txt. */
  sensitivity(opts: { data: Data; metric?: Metric; reuseFloat?: boolean | undefined; onProgress?: ProgressCallback | undefined }): SensitivityResult {
    const m = checkMetric(opts?.metric ?? "L1", "QuantAnalysis.sensitivity");
    const args = this.data(opts?.data, "QuantAnalysis.sensitivity");
    const t0 = performance.now();
    const rows = runSensitivity(this.analysis, this.rt, args, { metric: m, reuseFloat: opts.reuseFloat, onProgress: opts.onProgress ?? this.onProgress });
    const columns = ["op_name", "sensitive_type", "op_type", m, "quant_dtype", "flops"];
    const t = makeTable(`Sensitivity (${m}), worst first`, rows, columns, (r) => ({
      op_name: r.op_name,
      sensitive_type: r.sensitive_type,
      op_type: r.op_type,
      [m]: r.value,
      quant_dtype: r.quant_dtype,
      flops: r.flops,
    }));
    this.write(`${m}_sensitive_ops.txt`, t.text);
    return { ...t, metric: m, elapsedMs: performance.now() - t0 };
  }

  /**
   * The cumulative-error curve: per op in execution order, the output error with every point up
   * to that op quantized. `plot()` draws it; `step` says how much each op added. Writes
   * cumulative_error.txt.
   */
  cumulativeError(opts: { data: Data; metric?: Metric; onProgress?: ProgressCallback }): Table<CumulativeRow> & { metric: Metric; plot(): Record<string, unknown> } {
    const m = checkMetric(opts?.metric ?? "L1", "QuantAnalysis.cumulativeError");
    const args = this.data(opts?.data, "QuantAnalysis.cumulativeError");
    const rows = runCumulative(this.analysis, this.rt, args, m, opts.onProgress ?? this.onProgress);
    const worst = rows.reduce((a, r) => (Math.abs(r.step) > Math.abs(a.step) ? r : a), rows[0]);
    const t = makeTable(
      `Cumulative ${m}: every op up to each one quantized${worst ? `; the largest step is ${worst.op_name} (${worst.op_type})` : ""}`,
      rows,
      ["index", "op_name", "op_type", "value", "step"],
      (r) => ({ ...r }),
    );
    this.write("cumulative_error.txt", t.text);
    return { ...t, metric: m, plot: () => cumulativePlot(rows, m) };
  }

  /** Every op's output in both models; writes compare_per_layer_out.txt. */
  comparePerLayer(opts: { data: Data }): Table<LayerRow> {
    const args = this.data(opts?.data, "QuantAnalysis.comparePerLayer");
    const rows = comparePerLayer(this.base(args), { model: this.analysis, rt: this.rt }, args);
    const t = makeTable("Per-layer comparison: baseline vs analysis outputs", rows, Object.keys(rows[0] ?? { mod_name: "" }));
    this.write("compare_per_layer_out.txt", t.text);
    return t;
  }

  /** The worst batch per model output (baseline vs analysis); writes badcase.txt. */
  autoFindBadCase(batches: Data[], opts: { metric?: Metric } = {}): Table<BadCaseRow> {
    const m = checkMetric(opts.metric ?? "L1", "QuantAnalysis.autoFindBadCase");
    if (!Array.isArray(batches) || batches.length === 0) throw errors.coded("INVALID_ARGUMENT", "QuantAnalysis.autoFindBadCase: pass a non-empty array of batches");
    const worst: BadCaseRow[] = [];
    batches.forEach((batch, k) => {
      const args = checkData(this.rt, batch, `QuantAnalysis.autoFindBadCase (batch ${k})`);
      const b = this.base(args);
      const ref = withPoints(
        b.rt,
        FakeQuantState.FLOAT,
        () => {},
        () => runModel(b.model, b.rt, args),
      );
      const out = withPoints(
        this.rt,
        FakeQuantState.VALIDATION,
        () => {},
        () => runModel(this.analysis, this.rt, args),
      );
      out.forEach((o, i) => {
        const v = metric(m, ref[i], o);
        const cur = worst[i];
        const isWorse = cur === undefined || (largerIsWorse(m) ? v > cur.value : v < cur.value);
        if (isWorse) worst[i] = { output: i, worst_batch: k, metric: m, value: v };
      });
      tf.dispose([...ref, ...out]);
    });
    const t = makeTable(`Worst batch per output (${m})`, worst, ["output", "worst_batch", "metric", "value"]);
    this.write("badcase.txt", t.text);
    return t;
  }

  /**
   * Abnormal layers with a fix each; writes abnormal_layer_advisor.txt. Without `data` it uses
   * the data of the last statistics / sensitivity / comparePerLayer call.
   */
  advisor(opts: { data?: Data } = {}): Table<AdviceRow> {
    if (opts.data === undefined && this.lastData === null) {
      throw errors.coded("INVALID_ARGUMENT", "QuantAnalysis.advisor: pass { data }, or run statistics / sensitivity / comparePerLayer first so their data can be reused");
    }
    const args = this.data(opts.data, "QuantAnalysis.advisor");
    const rows = advise(this.analysis, this.rt, args);
    const caption = rows.length === 0 ? "Advisor: no abnormal layer found" : `Advisor: ${rows.length} finding${rows.length === 1 ? "" : "s"}, each with a fix`;
    const t = makeTable(caption, rows, ["op_name", "op_type", "attr", "issue", "detail", "fix"]);
    this.write("abnormal_layer_advisor.txt", t.text);
    return t;
  }
}
