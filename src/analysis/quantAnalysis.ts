/**
 * The precision-debug entry point, after the reference toolchain's QuantAnalysis: compares a
 * float baseline with a calibrated (or QAT) model. Every method returns rows, a danfo
 * DataFrame and the text it writes to `outDir` (when given) in the reference file layout.
 *
 * ```ts
 * const qa = new qb.analysis.QuantAnalysis(floatModel, calib, { outDir: "debug" });
 * qa.sensitivity({ data: x }).toDataFrame();     // worst first
 * qa.statistics({ data: x });                    // baseline_statistic.txt, analysis_statistic.txt
 * ```
 */
import * as tf from "@tensorflow/tfjs";
import { mkdirSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { makeReport, makeTable, type Report, type Table } from "../util/table";
import type { Module } from "../nn/module";
import { INTERCEPTOR } from "../nn/runtime";
import { FakeQuantState } from "../quant/state";
import { reportProgress, type ProgressCallback } from "../util/progress";
import { prepare } from "../workflow/prepare";
import { QuantRuntime, runtimeOf } from "../workflow/quantRuntime";
import { advise, type AdviceRow } from "./advisor";
import { comparePerLayer, type LayerRow } from "./comparePerLayer";
import { checkMetric, largerIsWorse, metric, type Metric } from "./metrics";
import { argsOf, checkData, uncalibrated, withPoints, runModel, type Data } from "./runner";
import { runSensitivity, sortSensitivity, type SensitivityRow } from "./sensitivity";
import { cumulativePlot, runCumulative, type CumulativeRow } from "./cumulative";
import { collectStatistics, STAT_COLUMNS, type StatRow } from "./statistics";
import { errors } from "../messages";

export type { Table };

/** Batches read one at a time, such as a `qb.data` Dataset (its `length` feeds the progress bar). */
export interface BatchStream extends AsyncIterable<tf.Tensor[]> {
  readonly length?: number;
}

/** Several batches for one analysis: in memory (each a tensor, or a list for several inputs) or a Dataset streamed from disk. */
export type Batches = Data[] | BatchStream;

/** The mean of each numeric field over rows that share a key (per batch → one row); `max` fields take the largest, `min` the smallest. */
function mergeRows<R extends object>(
  perBatch: R[][],
  key: (r: R) => string,
  max: (keyof R)[] = [],
  min: (keyof R)[] = [],
): R[] {
  const acc = new Map<string, { row: R; n: number }>();
  for (const rows of perBatch) {
    for (const r of rows) {
      const k = key(r);
      const cur = acc.get(k);
      if (cur === undefined) {
        acc.set(k, { row: { ...r }, n: 1 });
        continue;
      }
      cur.n++;
      const row = cur.row as Record<string, unknown>;
      for (const [f, v] of Object.entries(r)) {
        if (typeof v !== "number" || typeof row[f] !== "number") continue;
        const was = row[f] as number;
        row[f] = max.includes(f as keyof R)
          ? Math.max(was, v)
          : min.includes(f as keyof R)
            ? Math.min(was, v)
            : was + (v - was) / cur.n;
      }
    }
  }
  return [...acc.values()].map((a) => a.row);
}

export interface SensitivityResult extends Table<SensitivityRow> {
  metric: Metric;
  elapsedMs: number;
}

export type CumulativeResult = Table<CumulativeRow> & { metric: Metric; plot(): Record<string, unknown> };

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
      throw errors.invalidArgument(
        "QuantAnalysis",
        "the baseline is not a qb.nn.Module",
        "pass the float model first, then the prepared one: new qb.analysis.QuantAnalysis(model, calib)",
      );
    }
    this.outDir = opts.outDir;
    this.onProgress = opts.onProgress;
  }

  private write(file: string, text: string): void {
    if (this.outDir === undefined) return;
    mkdirSync(this.outDir, { recursive: true });
    writeFileSync(path.join(this.outDir, file), text);
  }

  /** A copy of a streamed batch kept as `lastData` (freed when replaced). */
  private owned: tf.Tensor[] = [];

  private remember(data: Data, copy: boolean): void {
    tf.dispose(this.owned);
    this.owned = copy ? argsOf(data).map((t) => tf.keep(tf.clone(t))) : [];
    this.lastData = copy ? this.owned : data;
  }

  private data(given: Data | undefined, where: string): tf.Tensor[] {
    const args = checkData(this.rt, given ?? (this.lastData as Data), where);
    if (given !== undefined) this.remember(given, false);
    return args;
  }

  /** The baseline as a prepared float model (all ops named like the analysis model's). */
  private base(args: tf.Tensor[]): { model: Module; rt: QuantRuntime } {
    if (this.baselineRun !== null) return this.baselineRun;
    const own = (this.baseline as unknown as Record<symbol, unknown>)[INTERCEPTOR];
    if (own instanceof QuantRuntime) this.baselineRun = { model: this.baseline, rt: own };
    else {
      const model = prepare(this.baseline, args, {
        qconfigSetter: [],
        ...(this.rt.march !== null ? { march: this.rt.march } : {}),
      });
      this.baselineRun = { model, rt: runtimeOf(model, "QuantAnalysis") };
    }
    return this.baselineRun;
  }

  /** Per-op statistics of both models; writes baseline_statistic.txt and analysis_statistic.txt. */
  statistics(opts: { data: Data }): Report<{ baseline: Table<StatRow>; analysis: Table<StatRow> }> {
    const args = this.data(opts?.data, "QuantAnalysis.statistics");
    const b = this.base(args);
    const baseline = makeTable(
      "Statistics of the baseline (float) model",
      collectStatistics(b.model, b.rt, args, FakeQuantState.FLOAT),
      STAT_COLUMNS,
    );
    const analysis = makeTable(
      "Statistics of the analysis (quantized) model",
      collectStatistics(this.analysis, this.rt, args, FakeQuantState.VALIDATION),
      STAT_COLUMNS,
    );
    this.write("baseline_statistic.txt", baseline.text);
    this.write("analysis_statistic.txt", analysis.text);
    return makeReport("Statistics of the baseline and the analysis model", { baseline, analysis });
  }

  /**
   * Runs `one` on `data`, or on every batch of `batches` and merges the per-batch results (the
   * reference debugger's `data_num`): synchronously for batches in memory, as a promise for a
   * Dataset (read one batch at a time; each is freed after its run).
   */
  private over<R, T>(
    opts: { data?: Data | undefined; batches?: Batches | undefined },
    where: string,
    one: (args: tf.Tensor[], k: number, n: number | undefined) => R,
    merge: (rs: R[]) => T,
  ): T | Promise<T> {
    const given = opts?.batches;
    if (given === undefined) return merge([one(this.data(opts?.data, where), 0, 1)]);
    if (opts.data !== undefined)
      throw errors.invalidArgument(where, "both { data } and { batches }", "pass one of them");
    if (!Array.isArray(given) && given !== null && typeof given === "object" && Symbol.asyncIterator in given) {
      return (async () => {
        const rs: R[] = [];
        for await (const batch of given) {
          try {
            rs.push(one(checkData(this.rt, batch, `${where} (batch ${rs.length})`), rs.length, given.length));
            if (rs.length === 1) this.remember(batch, true);
          } finally {
            tf.dispose(batch);
          }
        }
        if (rs.length === 0)
          throw errors.invalidArgument(where, "an empty dataset", "check the folder and the dataset's limit");
        return merge(rs);
      })();
    }
    if (!Array.isArray(given) || given.length === 0)
      throw errors.invalidArgument(
        where,
        "batches that are not a non-empty array or a qb.data Dataset",
        "pass [batch, ...] or a Dataset",
      );
    const rs = given.map((b, k) => one(checkData(this.rt, b, `${where} (batch ${k})`), k, given.length));
    this.remember(given[0], false);
    return merge(rs);
  }

  /**
   * Sensitivity table, worst first; writes <metric>_sensitive_ops.txt. With `batches` (an array or
   * a Dataset, which makes it async) each point's value is the mean over the batches.
   */
  sensitivity(opts: {
    data: Data;
    metric?: Metric;
    reuseFloat?: boolean | undefined;
    onProgress?: ProgressCallback | undefined;
  }): SensitivityResult;
  sensitivity(opts: {
    batches: Data[];
    metric?: Metric;
    reuseFloat?: boolean | undefined;
    onProgress?: ProgressCallback | undefined;
  }): SensitivityResult;
  sensitivity(opts: {
    batches: BatchStream;
    metric?: Metric;
    reuseFloat?: boolean | undefined;
    onProgress?: ProgressCallback | undefined;
  }): Promise<SensitivityResult>;
  sensitivity(opts: {
    data?: Data;
    batches?: Batches;
    metric?: Metric;
    reuseFloat?: boolean | undefined;
    onProgress?: ProgressCallback | undefined;
  }): SensitivityResult | Promise<SensitivityResult> {
    const m = checkMetric(opts?.metric ?? "L1", "QuantAnalysis.sensitivity");
    const t0 = performance.now();
    const progress = opts?.onProgress ?? this.onProgress;
    return this.over(
      opts,
      "QuantAnalysis.sensitivity",
      (args, k, n) =>
        runSensitivity(this.analysis, this.rt, args, {
          metric: m,
          reuseFloat: opts.reuseFloat,
          // one bar over every batch's points
          onProgress: (p) =>
            reportProgress(progress, {
              ...p,
              done: k * (p.total ?? 0) + p.done,
              total: n === undefined || p.total === undefined ? undefined : n * p.total,
            }),
        }),
      (perBatch) =>
        this.sensitivityTable(
          m,
          sortSensitivity(
            mergeRows(perBatch, (r) => `${r.op_name}|${r.sensitive_type}`),
            m,
            this.rt,
          ),
          t0,
        ),
    );
  }

  private sensitivityTable(m: Metric, rows: SensitivityRow[], t0: number): SensitivityResult {
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
  cumulativeError(opts: { data: Data; metric?: Metric; onProgress?: ProgressCallback }): CumulativeResult;
  cumulativeError(opts: { batches: Data[]; metric?: Metric; onProgress?: ProgressCallback }): CumulativeResult;
  cumulativeError(opts: {
    batches: BatchStream;
    metric?: Metric;
    onProgress?: ProgressCallback;
  }): Promise<CumulativeResult>;
  cumulativeError(opts: {
    data?: Data;
    batches?: Batches;
    metric?: Metric;
    onProgress?: ProgressCallback;
  }): CumulativeResult | Promise<CumulativeResult> {
    const m = checkMetric(opts?.metric ?? "L1", "QuantAnalysis.cumulativeError");
    return this.over(
      opts,
      "QuantAnalysis.cumulativeError",
      (args) => runCumulative(this.analysis, this.rt, args, m, opts.onProgress ?? this.onProgress),
      (perBatch) =>
        this.cumulativeTable(
          m,
          mergeRows(perBatch, (r) => r.op_name),
        ),
    );
  }

  private cumulativeTable(m: Metric, rows: CumulativeRow[]): CumulativeResult {
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

  /**
   * Every op's output in both models; writes compare_per_layer_out.txt. Over several `batches`:
   * Cosine, L1 and the means averaged, Atol and the maxima the largest, the minima the smallest.
   */
  comparePerLayer(opts: { data: Data }): Table<LayerRow>;
  comparePerLayer(opts: { batches: Data[] }): Table<LayerRow>;
  comparePerLayer(opts: { batches: BatchStream }): Promise<Table<LayerRow>>;
  comparePerLayer(opts: { data?: Data; batches?: Batches }): Table<LayerRow> | Promise<Table<LayerRow>> {
    return this.over(
      opts,
      "QuantAnalysis.comparePerLayer",
      (args) => comparePerLayer(this.base(args), { model: this.analysis, rt: this.rt }, args),
      (perBatch) =>
        this.layerTable(
          mergeRows(
            perBatch,
            (r) => r.mod_name,
            ["Atol", "max_qscale_diff", "base_max", "analy_max"],
            ["base_min", "analy_min"],
          ),
        ),
    );
  }

  private layerTable(rows: LayerRow[]): Table<LayerRow> {
    const t = makeTable(
      "Per-layer comparison: baseline vs analysis outputs",
      rows,
      Object.keys(rows[0] ?? { mod_name: "" }),
    );
    this.write("compare_per_layer_out.txt", t.text);
    return t;
  }

  /** The worst batch per model output (baseline vs analysis); writes badcase.txt. */
  autoFindBadCase(batches: Data[], opts: { metric?: Metric } = {}): Table<BadCaseRow> {
    const m = checkMetric(opts.metric ?? "L1", "QuantAnalysis.autoFindBadCase");
    if (!Array.isArray(batches) || batches.length === 0)
      throw errors.invalidArgument(
        "QuantAnalysis.autoFindBadCase",
        "no batches given",
        "pass a non-empty array of batches",
      );
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
      throw errors.invalidArgument(
        "QuantAnalysis.advisor",
        "no data given and none from an earlier call",
        "pass { data }, or run statistics / sensitivity / comparePerLayer first so their data can be reused",
      );
    }
    const args = this.data(opts.data, "QuantAnalysis.advisor");
    const rows = advise(this.analysis, this.rt, args);
    const caption =
      rows.length === 0
        ? "Advisor: no abnormal layer found"
        : `Advisor: ${rows.length} finding${rows.length === 1 ? "" : "s"}, each with a fix`;
    const t = makeTable(caption, rows, ["op_name", "op_type", "attr", "issue", "detail", "fix"]);
    this.write("abnormal_layer_advisor.txt", t.text);
    return t;
  }
}
