/**
 * Task metrics of a quantized model against its own float run, over a dataset: per output the
 * cosine similarity, MSE, largest absolute error and SQNR, with the deployment threshold users
 * work against shown as pass / fail (the reference toolchain's guidance: cosine ≥ 0.99 for
 * classification, ≥ 0.95 for detection and segmentation); for classifiers top-1 / top-5
 * agreement with float and, given labels, accuracy; and any metric the user supplies.
 *
 * The float outputs come from the same prepared model with every fake-quantizer off (the same
 * graph and engine), so a batch costs two runs and no second model.
 *
 * ```ts
 * const ev = await qb.analysis.evaluate(calib, batches, { task: "classification" });
 * ev;             // a table: output, cosine, mse, max_abs, sqnr_db, min_cosine, pass
 * ev.top1;        // share of samples whose top-1 class is float's
 * ```
 */
import * as tf from "@tensorflow/tfjs";
import { errors } from "../messages";
import type { Module } from "../nn/module";
import { FakeQuantState } from "../quant/state";
import { reportProgress, type ProgressCallback } from "../util/progress";
import { makeTable, type Table } from "../util/table";
import type { Batch, Batches } from "../workflow/calibrate";
import { validatingRuntime } from "../workflow/quantRuntime";
import { checkData, runModel, uncalibrated, withPoints } from "./runner";

export type Task = "classification" | "detection" | "segmentation" | "other";

/** The reference toolchain's cosine guidance per task. */
export const MIN_COSINE: Record<Task, number> = {
  classification: 0.99,
  detection: 0.95,
  segmentation: 0.95,
  other: 0.99,
};

export interface EvaluateOptions {
  /** Sets the cosine threshold (and, for "classification", top-k agreement on output 0). Default "other". */
  task?: Task;
  /** The cosine an output must reach to pass (default: the task's). */
  minCosine?: number;
  /**
   * Class index of every sample, in dataset order (classification accuracy of float and quantized).
   * Default: the dataset's own labels (an image folder with class sub-folders or a labels CSV).
   */
  labels?: ArrayLike<number>;
  /** Your own metrics: (float outputs, quantized outputs) of one batch → a number; averaged over batches. */
  metrics?: Record<string, (float: tf.Tensor[], quantized: tf.Tensor[]) => number>;
  onProgress?: ProgressCallback;
}

export interface EvaluateRow {
  output: number;
  shape: string;
  cosine: number;
  mse: number;
  max_abs: number;
  sqnr_db: number;
  min_cosine: number;
  pass: boolean;
}

export interface Evaluation extends Table<EvaluateRow> {
  samples: number;
  batches: number;
  /** Every output reached its cosine threshold. */
  passed: boolean;
  /** Classification: the share of samples whose quantized top-1 class is float's. */
  top1?: number;
  /** Classification: the share of samples whose float top-1 class is among the quantized top 5. */
  top5?: number;
  /** With labels: accuracy of the float and the quantized model. */
  accuracy?: { float: number; quantized: number };
  /** Your metrics, averaged over batches. */
  custom: Record<string, number>;
}

interface Sums {
  dot: number;
  ff: number;
  qq: number;
  se: number;
  n: number;
  maxAbs: number;
  shape: number[];
}

/** Top-k class indices of each row of a [N, C] (or [N, C, ...] flattened) output. */
function topk(values: Float32Array | Int32Array | Uint8Array, rows: number, k: number): number[][] {
  const c = values.length / rows;
  return Array.from({ length: rows }, (_, r) => {
    const row = Array.from(values.subarray(r * c, (r + 1) * c));
    return row
      .map((v, i) => [v, i] as const)
      .sort((a, b) => b[0] - a[0] || a[1] - b[1])
      .slice(0, k)
      .map(([, i]) => i);
  });
}

export async function evaluate(model: Module, data: Batches | Batch, opts: EvaluateOptions = {}): Promise<Evaluation> {
  const rt = validatingRuntime(model, "evaluate");
  const missing = uncalibrated(rt);
  if (missing.length > 0) throw errors.notCalibrated("evaluate", missing);
  const own = (data as { labels?: unknown }).labels;
  if (opts.labels === undefined && Array.isArray(own)) opts = { ...opts, labels: own as number[] };
  const task = opts.task ?? "other";
  if (!(task in MIN_COSINE))
    throw errors.invalidArgument(
      "evaluate",
      `task '${String(task)}'`,
      "pass classification, detection, segmentation or other",
    );
  const minCosine = opts.minCosine ?? MIN_COSINE[task];
  // one tensor, or (for a model of several inputs) one list of tensors, is one batch
  const oneBatch =
    data instanceof tf.Tensor ||
    (Array.isArray(data) &&
      data.length > 0 &&
      data.every((d) => d instanceof tf.Tensor) &&
      rt.graph.inputShapes.length > 1);
  const batches = oneBatch ? [data as Batch] : (data as Batches);
  const sized = (batches as { length?: unknown }).length;
  const total = typeof sized === "number" ? sized : undefined;
  const sums: Sums[] = [];
  const custom: Record<string, number> = {};
  let samples = 0;
  let nBatches = 0;
  let agree1 = 0;
  let agree5 = 0;
  const correct = { float: 0, quantized: 0 };
  const start = performance.now();
  for await (const batch of batches as AsyncIterable<Batch>) {
    const args = checkData(rt, batch, `evaluate (batch ${nBatches})`);
    const float = withPoints(
      rt,
      FakeQuantState.FLOAT,
      (_o, _r, fq) => (fq.fakeQuantOverride = false),
      () => runModel(model, rt, args),
    );
    const quant = runModel(model, rt, args);
    try {
      const n = float[0]?.shape[0] ?? 1;
      float.forEach((f, i) => {
        const a = f.dataSync();
        const b = quant[i].dataSync();
        const s = (sums[i] ??= { dot: 0, ff: 0, qq: 0, se: 0, n: 0, maxAbs: 0, shape: f.shape.slice(1) });
        for (let k = 0; k < a.length; k++) {
          const d = a[k] - b[k];
          s.dot += a[k] * b[k];
          s.ff += a[k] * a[k];
          s.qq += b[k] * b[k];
          s.se += d * d;
          if (Math.abs(d) > s.maxAbs || Number.isNaN(d)) s.maxAbs = Math.abs(d);
        }
        s.n += a.length;
      });
      if (task === "classification" && float.length > 0) {
        const tf1 = topk(float[0].dataSync(), n, 1);
        const tq = topk(quant[0].dataSync(), n, 5);
        tf1.forEach(([cls], r) => {
          if (tq[r][0] === cls) agree1++;
          if (tq[r].includes(cls)) agree5++;
          const label = opts.labels?.[samples + r];
          if (label !== undefined) {
            if (cls === label) correct.float++;
            if (tq[r][0] === label) correct.quantized++;
          }
        });
      }
      for (const [name, fn] of Object.entries(opts.metrics ?? {})) {
        const v = fn(float, quant);
        if (typeof v !== "number" || Number.isNaN(v))
          throw errors.invalidArgument(
            `evaluate: metric '${name}'`,
            `it returned ${String(v)}`,
            "return a number for each batch",
          );
        custom[name] = (custom[name] ?? 0) + v;
      }
      samples += n;
    } finally {
      tf.dispose([...float, ...quant]);
    }
    nBatches++;
    reportProgress(opts.onProgress, { task: "evaluate", done: nBatches, total, elapsedMs: performance.now() - start });
  }
  if (nBatches === 0) throw errors.invalidArgument("evaluate", "no batches", "pass one or more input batches");
  for (const k of Object.keys(custom)) custom[k] /= nBatches;
  const rows: EvaluateRow[] = sums.map((s, i) => {
    const cosine = s.ff === 0 && s.qq === 0 ? 1 : s.dot / Math.sqrt(s.ff * s.qq);
    return {
      output: i,
      shape: `[${s.shape}]`,
      cosine,
      mse: s.se / s.n,
      max_abs: s.maxAbs,
      sqnr_db: s.se === 0 ? Infinity : 10 * Math.log10(s.ff / s.se),
      min_cosine: minCosine,
      pass: cosine >= minCosine,
    };
  });
  const passed = rows.every((r) => r.pass);
  const extra: string[] = [];
  const result: Partial<Evaluation> = { samples, batches: nBatches, passed, custom };
  if (task === "classification") {
    result.top1 = agree1 / samples;
    result.top5 = agree5 / samples;
    extra.push(`top-1 agreement ${(100 * result.top1).toFixed(2)}%, top-5 ${(100 * result.top5).toFixed(2)}%`);
    if (opts.labels !== undefined) {
      result.accuracy = { float: correct.float / samples, quantized: correct.quantized / samples };
      extra.push(
        `accuracy float ${(100 * result.accuracy.float).toFixed(2)}% → quantized ${(100 * result.accuracy.quantized).toFixed(2)}%`,
      );
    }
  }
  for (const [k, v] of Object.entries(custom)) extra.push(`${k} ${v.toPrecision(6)}`);
  const table = makeTable(
    `Quantized vs float over ${samples} samples (${nBatches} batches): ${passed ? "PASS" : "FAIL"} at cosine ≥ ${minCosine} (${task})${extra.length ? "; " + extra.join("; ") : ""}`,
    rows,
    ["output", "shape", "cosine", "mse", "max_abs", "sqnr_db", "min_cosine", "pass"],
  );
  return { ...table, ...result } as Evaluation;
}
