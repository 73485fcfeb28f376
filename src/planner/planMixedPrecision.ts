/**
 * A mixed-precision planner that knows the chip: which quantization points to raise to int16, and
 * which Linears to rewrite as broadcast mul + sum, for the best trade-off between output error and
 * estimated latency — never a plan the march's rules refuse.
 *
 * 1. One sensitivity pass per dtype (all int8, all int16) gives each point's error at each dtype;
 *    the error of a plan is predicted as their sum, scaled by κ so that the all-int8 prediction
 *    equals its measurement.
 * 2. Latency of a plan is the analytic `perf` of the base IR with the plan's dtypes (and each
 *    rewrite as Mul + Sum + Add nodes), so MAC rates by dtype pair, requantization and the
 *    rewrite's own cost count.
 * 3. A Lagrangian sweep over λ picks, for each λ, the choice of every point minimising
 *    predicted error + λ · latency; a GEMM whose input and weight would both be int16 on a march
 *    that forbids it is repaired to the cheapest legal alternative (int8 input, int8 weight, or
 *    the rewrite). Every candidate is checked against the rules.
 * 4. The distinct candidates (at most `evaluations`) are measured for real (prepare, calibrate,
 *    output error); κ is re-fitted to the measurements, and the Pareto front of (measured error,
 *    latency) is returned.
 *
 * This file runs the steps (`PlannerRun`: measure a plan, a sensitivity pass); `plan.ts` holds
 * what a plan is and does to the IR, `search.ts` the error model, knobs, sweep and repair, and
 * `result.ts` the front the user gets.
 *
 * ```ts
 * const plan = await qb.analysis.planMixedPrecision(model, batches, { march: qb.March.NASH_M });
 * plan;                                    // the front, a table
 * const { qconfigSetter, apply } = plan.setter(plan.pick({ latencyMs: 0.08 }));
 * const calib = qb.prepare(apply(model), x, { qconfigSetter });
 * ```
 */
import * as tf from "@tensorflow/tfjs";
import { readFileSync } from "node:fs";
import type { Ir } from "../ir/types";
import { checkModel } from "../march/check";
import type { March } from "../march/march";
import { perf } from "../march/perf";
import { errors } from "../messages";
import type { Module } from "../nn/module";
import { qint16, qint8 } from "../quant/dtypes";
import { getQconfig } from "../quant/qconfig";
import { FakeQuantState } from "../quant/state";
import { reportProgress, type ProgressCallback } from "../util/progress";
import { InterruptedError } from "../util/interrupt";
import { calibrate } from "../workflow/calibrate";
import { exportModel } from "../workflow/export";
import { prepare, preparedOps } from "../workflow/prepare";
import { defaultCalibrationQconfigSetter, type QconfigSetter } from "../workflow/qconfigSetters";
import { setFakeQuantize } from "../workflow/setFakeQuantize";
import { QuantAnalysis } from "../analysis/quantAnalysis";
import { metric } from "../analysis/metrics";
import { ensureBackend } from "../backend";
import { Dataset } from "../io/dataset";
import {
  asError,
  BUILT_IN_BASES,
  irOf,
  planKey,
  realise,
  ruleViolations,
  type Choice,
  type MixedPrecisionPlan,
  type Plan,
  type PlanMetric,
  type SavedPlan,
} from "./plan";

import { planResult, type Measured } from "./result";
import {
  buildKnobs,
  choosePlans,
  ErrorModel,
  paretoFront,
  pointsOf,
  refine,
  refit,
  sweepCandidates,
  topkPromotion,
  type Knob,
} from "./search";

export type { Choice, MixedPrecisionPlan, PlanRow, SavedPlan } from "./plan";

export interface PlannerOptions {
  march: March;
  /** The template for every point the plan does not raise (default: all int8). */
  base?: QconfigSetter;
  /** Full-model evaluations of candidate plans (default 12, at most 20 recommended). */
  evaluations?: number;
  /** Number of λ values swept (default 40). */
  sweep?: number;
  /** Pick one point: the most accurate within `latencyMs`, or the fastest within `error` (see `plan.chosen`). */
  budget?: { latencyMs?: number; error?: number };
  /**
   * What "error" means: mean |output − float| ("L1", default), "MSE", or "Cosine" (1 − the cosine
   * similarity of the outputs, the deployment check's measure). The sensitivity passes, the
   * measurements and the front all use it.
   */
  metric?: "L1" | "MSE" | "Cosine" | "Top1";
  /** Local repair runs until every measured plan is predicted within this relative error (default 0.25) or the evaluations are spent. */
  tolerance?: number;
  /**
   * Let a plan keep the model's tail in float on the CPU, as deployments do for the last op or
   * two: up to this many of the last weighted ops (a Linear / Conv and every op after it) run
   * unquantized, costed at the march's CPU rate (default 0: everything on the BPU).
   */
  cpuFallback?: number;
  /** Batches the sensitivity passes average over (default 1: the first; each costs a full pass). */
  sensitivityBatches?: number;
  onProgress?: ProgressCallback;
}

/**
 * Reads a plan saved with `plan.save(path)` (or its JSON): the setters and model transform that
 * realise it, ready for prepare. A base that is not built in must be passed as `base`.
 *
 * ```ts
 * const { qconfigSetter, apply, march } = qb.analysis.loadPlan("plan.json");
 * qb.setMarch(march);
 * const calib = qb.prepare(apply(model).eval(), x, { qconfigSetter });
 * ```
 */
export function loadPlan(
  source: string | SavedPlan,
  opts: { base?: QconfigSetter } = {},
): ReturnType<typeof realise> & { march: March; saved: SavedPlan } {
  const where = `loadPlan${typeof source === "string" ? ` (${source})` : ""}`;
  let saved: SavedPlan;
  if (typeof source === "string") {
    let text: string;
    try {
      text = readFileSync(source, "utf8");
    } catch (e) {
      throw errors.badFile("loadPlan", source, `cannot read it: ${(e as Error).message}`, e);
    }
    try {
      saved = JSON.parse(text) as SavedPlan;
    } catch (e) {
      throw errors.badFile(
        "loadPlan",
        source,
        `is not JSON (${(e as Error).message}); write it with plan.save(path)`,
        e,
      );
    }
  } else saved = source;
  if (
    saved?.format !== "quantbook-plan" ||
    saved.version !== 1 ||
    typeof saved.choices !== "object" ||
    saved.choices === null
  ) {
    throw errors.invalidArgument(
      where,
      "not a quantbook plan (format quantbook-plan, version 1)",
      "write it with plan.save(path)",
    );
  }
  const valid: Choice[] = ["int16", "int8", "rewrite", "rewrite-fixed", "cpu"];
  for (const [k, v] of Object.entries(saved.choices)) {
    if (!valid.includes(v))
      throw errors.invalidArgument(where, `choice '${String(v)}' for ${k}`, `use one of ${valid.join(", ")}`);
  }
  const base = opts.base ?? BUILT_IN_BASES[saved.base];
  if (base === undefined)
    throw errors.invalidArgument(
      where,
      `base '${saved.base}' is not a built-in setter`,
      "pass it: qb.analysis.loadPlan(path, { base })",
    );
  return { ...realise(new Map(Object.entries(saved.choices)), base), march: saved.march, saved };
}

/** The metric's error of the model's output against float, averaged over the batches. */
function outputError(model: Module, float: Module, batches: tf.Tensor[][], m: PlanMetric = "L1"): number {
  return tf.tidy(() => {
    let s = 0;
    for (const b of batches) {
      const y = (model.forward as (...a: tf.Tensor[]) => tf.Tensor)(...b);
      const r = (float.forward as (...a: tf.Tensor[]) => tf.Tensor)(...b);
      s += asError(m, metric(m, r, y));
    }
    return s / batches.length;
  });
}

/** One planner run: the float model, the data, the options, and the full-model evaluations spent. */
class PlannerRun {
  evaluations = 0;
  readonly t0 = performance.now();
  readonly base: QconfigSetter;
  readonly metric: PlanMetric;
  readonly maxEvals: number;
  readonly sensitivityBatches: number;

  constructor(
    readonly float: Module,
    readonly batches: tf.Tensor[][],
    readonly opts: PlannerOptions,
  ) {
    this.base = opts.base ?? defaultCalibrationQconfigSetter;
    this.metric = opts.metric ?? "L1";
    if (!["L1", "MSE", "Cosine", "Top1"].includes(this.metric))
      throw errors.invalidArgument(
        "planMixedPrecision",
        `metric '${String(this.metric)}'`,
        "pass L1, MSE, Cosine or Top1",
      );
    this.maxEvals = opts.evaluations ?? 12;
    if (batches.length === 0)
      throw errors.invalidArgument("planMixedPrecision", "no data", "pass one or more input batches");
    this.sensitivityBatches = opts.sensitivityBatches ?? 1;
    if (!Number.isInteger(this.sensitivityBatches) || this.sensitivityBatches < 1) {
      throw errors.invalidArgument(
        "planMixedPrecision",
        `sensitivityBatches ${this.sensitivityBatches}`,
        "pass a whole number ≥ 1",
      );
    }
  }

  /** Step `done` of the run's maxEvals + 3 (the base plan, two sensitivity passes, the measurements). */
  progress(done: number): void {
    const total = this.maxEvals + 3;
    reportProgress(this.opts.onProgress, {
      task: "planMixedPrecision",
      done,
      total,
      elapsedMs: performance.now() - this.t0,
    });
  }

  /** prepare → calibrate on every batch → VALIDATION, then `use` the calibrated model (disposed after). */
  async calibrated<R>(model: Module, qconfigSetter: QconfigSetter[], use: (calib: Module) => R): Promise<R> {
    const calib = prepare(model.eval(), this.batches[0], { qconfigSetter, warn: false, march: this.opts.march });
    try {
      setFakeQuantize(calib, FakeQuantState.CALIBRATION);
      await calibrate(calib, this.batches, { onProgress: () => {} });
      setFakeQuantize(calib, FakeQuantState.VALIDATION);
      return use(calib);
    } finally {
      calib.dispose();
    }
  }

  /** A plan realised, calibrated and measured: its output error and its export. */
  readonly measure = async (plan: Plan): Promise<{ error: number; ir: Ir }> => {
    const r = realise(plan, this.base);
    const model = r.apply(this.float);
    try {
      this.evaluations++;
      return await this.calibrated(model, r.qconfigSetter, (calib) => ({
        error: outputError(calib, this.float, this.batches, this.metric),
        ir: exportModel(calib, this.batches[0]),
      }));
    } finally {
      if (model !== this.float) model.dispose();
    }
  };

  /** The sensitivity table of the float model calibrated with `dtype` everywhere (value: the error). */
  sensitivity(dtype: typeof qint8) {
    const all: QconfigSetter = {
      setterName: `all ${dtype.name}`,
      qconfigFor: () => getQconfig({ weightDtype: dtype, outDtype: dtype }),
    };
    return this.calibrated(this.float, [all], (calib) => ({
      rows: new QuantAnalysis(this.float, calib, { onProgress: () => {} })
        .sensitivity({ batches: this.batches.slice(0, this.sensitivityBatches), metric: this.metric })
        .rows.map((r) => ({ ...r, value: asError(this.metric, r.value) })),
      ops: preparedOps(calib),
    }));
  }
}

/** The batches of the planner's data: one tensor, a list of tensors (one input each), or a list of input lists. */
function batchesOf(data: tf.Tensor | tf.Tensor[] | tf.Tensor[][]): tf.Tensor[][] {
  return data instanceof tf.Tensor
    ? [[data]]
    : (data as unknown[]).every((d) => d instanceof tf.Tensor)
      ? (data as tf.Tensor[]).map((d) => [d])
      : (data as tf.Tensor[][]);
}

export async function planMixedPrecision(
  float: Module,
  data: tf.Tensor | tf.Tensor[] | tf.Tensor[][] | Dataset,
  opts: PlannerOptions,
): Promise<MixedPrecisionPlan> {
  // a dataset on disk: its batches in memory for the planner's repeated runs (bound it with `limit`)
  if (data instanceof Dataset) {
    const batches = await data.take();
    try {
      return await planMixedPrecision(float, batches, opts);
    } finally {
      tf.dispose(batches.flat());
    }
  }
  await ensureBackend();
  const run = new PlannerRun(float, batchesOf(data), opts);
  try {
    const searched = await search(run);
    const result = await measureFront(run, searched);
    if (opts.budget) result.chosen = result.pick(opts.budget);
    return result;
  } catch (e) {
    // an interrupt inside one of the planner's steps (a calibration, a sensitivity pass) is the planner's
    if (e instanceof InterruptedError && !e.message.startsWith("planMixedPrecision")) {
      const step = /^(\w+)/.exec(e.message)?.[1] ?? "a step";
      throw new InterruptedError(
        `planMixedPrecision (in its ${step} step, after ${run.evaluations} evaluations; the float model is unchanged)`,
      );
    }
    throw e;
  }
}

/** What the search hands to the measurements. */
interface Searched {
  baseError: number;
  baseIr: Ir;
  model: ErrorModel;
  knobs: Knob[];
  chosen: Map<string, Plan>;
  unplanned: string[];
  latency: (p: Plan) => number;
}

/** The base plan measured, a sensitivity pass per dtype, the error model, the knobs and the plans to measure. */
async function search(run: PlannerRun): Promise<Searched> {
  const { opts } = run;
  const baseMeasured = await run.measure(new Map());
  const baseIr = baseMeasured.ir;
  run.progress(1);
  const s8 = await run.sensitivity(qint8);
  const s16 = await run.sensitivity(qint16);
  run.progress(3);
  const unplanned = checkModel(baseIr, opts.march)
    .violations.filter((v) => v.kind === "no-rule")
    .map((v) => v.op);
  const points = pointsOf(s8.rows, s16.rows, baseIr, unplanned);
  const linears = s8.ops.filter((o) => o.info.type === "Linear").map((o) => o.info.modulePath || o.info.name);
  const model = new ErrorModel(points, baseIr);
  const raw0 = model.raw(new Map());
  model.kappa = raw0 > 0 ? baseMeasured.error / raw0 : 1;
  const predict = (plan: Plan) => model.predict(plan);
  const latency = (plan: Plan) => {
    try {
      return perf(irOf(baseIr, plan), opts.march).latencyMs;
    } catch {
      return Infinity; // a dtype pair the chip has no unit for
    }
  };
  const context = { points, linears, baseIr, march: opts.march, cpuFallback: opts.cpuFallback ?? 0, latency, predict };
  const knobs = buildKnobs(context);
  const candidates = sweepCandidates(knobs, context, opts.sweep ?? 40);
  const chosen = choosePlans(knobs, candidates, latency, predict, run.maxEvals);
  return { baseError: baseMeasured.error, baseIr, model, knobs, chosen, unplanned, latency };
}

/** Measures the chosen plans, re-fits and repairs the error model, and reports the front. */
async function measureFront(run: PlannerRun, s: Searched): Promise<MixedPrecisionPlan> {
  const { opts } = run;
  const { model } = s;
  const basePerf = perf(s.baseIr, opts.march);
  const measured: Measured[] = [
    {
      plan: new Map(),
      error: s.baseError,
      predicted: model.predict(new Map()),
      latency: basePerf.latencyMs,
      mac16: basePerf.int16MacShare,
    },
  ];
  let n = 0;
  /** Plans whose realised export the chip refused (the search's patched IR said they were legal): never on the front. */
  const refused: string[] = [];
  const legalExport = (plan: Plan, ir: Ir) => {
    const bad = ruleViolations(ir, opts.march);
    if (bad.length > 0) refused.push(`${planKey(plan)}: ${bad[0]}`);
    return bad.length === 0;
  };
  for (const plan of s.chosen.values()) {
    if (plan.size === 0) continue;
    const m = await run.measure(plan);
    run.progress(3 + ++n);
    if (!legalExport(plan, m.ir)) continue;
    // the measured plan's own export: its latency is exact (the search used the patched base IR)
    const p = perf(m.ir, opts.march);
    measured.push({
      plan,
      error: m.error,
      predicted: model.predict(plan),
      latency: p.latencyMs,
      mac16: p.int16MacShare,
    });
  }
  const gap = () =>
    measured.reduce((a, m) => a + Math.abs(m.predicted - m.error) / Math.max(m.error, 1e-12), 0) / measured.length;
  const before = gap();
  refit(measured, model);
  await refine({
    measured,
    model,
    baseIr: s.baseIr,
    march: opts.march,
    tolerance: opts.tolerance ?? 0.25,
    budget: Math.max(0, Math.min(4, run.maxEvals + 4 - run.evaluations)),
    measure: run.measure,
    legalExport,
  });
  const after = gap();
  // Horizon-style top-k promotion, measured the same way
  const topk = await topkPromotion(model.points, run.measure, opts.march, s.latency);
  // the last step reported: a progress bar ends full (the measurements stop where the budget allows, not at its count)
  run.progress(run.maxEvals + 3);
  return planResult({
    march: opts.march,
    base: run.base,
    metric: run.metric,
    front: paretoFront(measured),
    measuredCount: measured.length,
    knobCount: s.knobs.length,
    baseError: s.baseError,
    unplanned: s.unplanned,
    refused,
    evaluations: run.evaluations,
    predictionGap: { before, after },
    topk,
    elapsedMs: performance.now() - run.t0,
  });
}
