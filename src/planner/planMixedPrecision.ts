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
 * ```ts
 * const plan = await qb.analysis.planMixedPrecision(model, batches, { march: qb.March.NASH_M });
 * plan;                                    // the front, a table
 * const { qconfigSetter, apply } = plan.setter(plan.pick({ latencyMs: 0.08 }));
 * const calib = qb.prepare(apply(model), x, { qconfigSetter });
 * ```
 */
import * as tf from "@tensorflow/tfjs";
import { readFileSync, writeFileSync } from "node:fs";
import type { Ir, IrNode } from "../ir/types";
import { checkModel } from "../march/check";
import type { March } from "../march/march";
import { marchSpec } from "../march/data";
import { perf } from "../march/perf";
import { errors } from "../messages";
import type { Module } from "../nn/module";
import { findOp } from "../ops";
import { qint16, qint8, type DTypeName } from "../quant/dtypes";
import { getQconfig, type QConfig } from "../quant/qconfig";
import { FakeQuantState } from "../quant/state";
import { replaceLinearWithBroadcastMulSum } from "../transforms/linearToMulSum";
import { reportProgress, type ProgressCallback } from "../util/progress";
import { InterruptedError } from "../util/interrupt";
import { makeTable, type Table } from "../util/table";
import { calibrate } from "../workflow/calibrate";
import { exportModel } from "../workflow/export";
import { prepare, preparedOps } from "../workflow/prepare";
import {
  calibration8bitWeight16bitActQconfigSetter,
  defaultCalibrationQconfigSetter,
  defaultQatQconfigSetter,
  ModuleNameQconfigSetter,
  qat8bitWeight16bitActQconfigSetter,
  type QconfigSetter,
} from "../workflow/qconfigSetters";
import { setFakeQuantize } from "../workflow/setFakeQuantize";
import { QuantAnalysis } from "../analysis/quantAnalysis";
import { metric } from "../analysis/metrics";
import { ensureBackend } from "../backend";
import { Dataset } from "../io/dataset";

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
 * One point's choice: its output or weight in int16 or int8, a Linear rewritten (mul output int16,
 * scale MSE or fixed 7/32767), or (key `<op>.cpu`) the op kept in float on the CPU.
 */
export type Choice = "int16" | "int8" | "rewrite" | "rewrite-fixed" | "cpu";

export interface PlanRow {
  point: number;
  measured_error: number;
  predicted_error: number;
  latency_ms: number;
  int16_mac_share: number;
  rewrites: number;
  choices: string;
}

export interface MixedPrecisionPlan extends Table<PlanRow> {
  march: March;
  /** Full-model evaluations used (plans measured, top-k references included). */
  evaluations: number;
  /** Relative gap |predicted − measured| / measured before and after re-fitting κ (mean over measured plans). */
  predictionGap: { before: number; after: number };
  /** Horizon-style promotion of the top-k sensitivity rows, measured the same way. */
  topk: { k: number; measured_error: number; latency_ms: number; legal: boolean }[];
  elapsedMs: number;
  /** The point the `budget` option picked, if one was given. */
  chosen: number | null;
  /** Ops the march has no rule for (assumed CPU): left at the base dtypes, not planned. */
  unplanned: string[];
  /** Measured plans the chip refused once realised (dropped from the front), each with its first violation: should stay empty. */
  refused: string[];
  /** The qconfig setters (and rewrites) that reproduce front point `i` through prepare → calibrate. */
  setter(i: number): { qconfigSetter: QconfigSetter[]; rewrites: string[]; apply<T extends Module>(model: T): T };
  /** The point of lowest error within `latencyMs`, or of lowest latency within `error`. */
  pick(budget: { latencyMs?: number; error?: number }): number;
  /** Front point `i` (default: the budget's choice, else the most accurate) as plain, reviewable JSON (`qb.analysis.loadPlan` reads it). */
  toJSON(i?: number): SavedPlan;
  /** Writes `toJSON(i)` to `path`. */
  save(path: string, i?: number): void;
  /** The front and top-k promotion on one chart (Vega-Lite). */
  plot(): Record<string, unknown>;
}

/** A plan: per point key (`op` output or `op.weight`, or a Linear path) its choice. */
type Plan = Map<string, Choice>;

/** A saved plan: one front point, in words a reviewer can read in a pull request. */
export interface SavedPlan {
  format: "quantbook-plan";
  version: 1;
  march: March;
  /** The template every point not listed keeps (a built-in setter's name). */
  base: string;
  metric: string;
  /** Per point: `op` (its output), `op.weight`, `op.input`, `<Linear path>.rewrite` or `op.cpu`, and its choice. */
  choices: Record<string, Choice>;
  measured_error: number;
  latency_ms: number;
}

const BUILT_IN_BASES: Record<string, QconfigSetter> = {
  calibration8bitWeight16bitActQconfigSetter,
  defaultCalibrationQconfigSetter,
  qat8bitWeight16bitActQconfigSetter,
  defaultQatQconfigSetter,
};

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

interface Point {
  key: string;
  op: string;
  kind: "activation" | "weight";
  /** The dtype the base template gives it. */
  base: DTypeName;
  e8: number;
  e16: number;
}

const FIXED_MUL_SCALE = 7 / 32767;

function planKey(p: Plan): string {
  return [...p]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `${k}=${v}`)
    .join(",");
}

/** The base IR with a plan's dtypes (rewrites as Mul + Sum + Add), for perf and the chip check. */
function irOf(base: Ir, plan: Plan): Ir {
  const outDtype = new Map<string, DTypeName>();
  const nodes: IrNode[] = [];
  for (const n0 of base.nodes) {
    const n: IrNode = JSON.parse(JSON.stringify({ ...n0, weight: n0.weight ? { ...n0.weight, data: [] } : undefined }));
    n.inputs.forEach((inp) => {
      if (!inp.requant) inp.quant.dtype = outDtype.get(inp.source) ?? inp.quant.dtype;
    });
    if (plan.get(`${n.name}.input`) === "int8" && n.inputs[0]) {
      n.inputs[0].quant.dtype = "qint8";
      n.inputs[0].requant = true;
    }
    const role = findOp(n.type)?.role;
    if (role === "passthrough") n.output.quant.dtype = n.inputs[0]?.quant.dtype ?? n.output.quant.dtype;
    const out = plan.get(n.name);
    if ((out === "int16" || out === "int8") && n.output.quant.dtype !== "float32")
      n.output.quant.dtype = out === "int16" ? "qint16" : "qint8";
    const w = plan.get(`${n.name}.weight`);
    if ((w === "int16" || w === "int8") && n.weight) n.weight.quant.dtype = w === "int16" ? "qint16" : "qint8";
    // kept on the CPU: quantized nowhere (its inputs from other CPU ops arrive in float through outDtype)
    if (plan.get(`${n.name}.cpu`) === "cpu") {
      n.output.quant.dtype = "float32";
      if (n.weight) n.weight.quant.dtype = "float32";
      n.inputs.forEach((inp) => (inp.requant = false));
      nodes.push(n);
      outDtype.set(n.name, "float32");
      continue;
    }
    const rw = plan.get(`${n.name}.rewrite`);
    if (rw !== undefined && n.type === "Linear" && n.weight) {
      const [out, inF] = n.attrs.weightLayout === "in_out" ? [n.weight.shape[1], n.weight.shape[0]] : n.weight.shape;
      const lead = n.inputs[0].shape.slice(0, -1);
      const q16 = { dtype: "qint16" as DTypeName, scale: [1] };
      const { weight: _w, ...rest } = n;
      const mul: IrNode = {
        ...rest,
        name: `${n.name}.mul`,
        type: "Mul",
        params: [],
        inputs: [{ ...n.inputs[0], quant: { ...n.inputs[0].quant, dtype: "qint16" } }],
        output: { shape: [...lead, out, inF], quant: q16 },
        flops: lead.reduce((a, b) => a * b, 1) * out * inF,
      };
      const sum: IrNode = {
        ...mul,
        name: `${n.name}.sum`,
        type: "Sum",
        inputs: [{ source: mul.name, shape: mul.output.shape, quant: q16, requant: false }],
        output: { shape: [...lead, out], quant: q16 },
        flops: mul.flops,
      };
      // the rewritten module's ops are all int16, its output too (what `realise` configures)
      const add: IrNode = {
        ...sum,
        name: n.name,
        type: "Add",
        inputs: [{ source: sum.name, shape: sum.output.shape, quant: q16, requant: false }],
        output:
          n.output.quant.dtype === "float32"
            ? n.output
            : { ...n.output, quant: { ...n.output.quant, dtype: "qint16" } },
        flops: lead.reduce((a, b) => a * b, 1) * out,
      };
      nodes.push(mul, sum, add);
      outDtype.set(n.name, add.output.quant.dtype);
      continue;
    }
    nodes.push(n);
    outDtype.set(n.name, n.output.quant.dtype);
  }
  return { ...base, nodes };
}

/** Why the front holds a single plan. */
function oneWhy(measured: number, knobs: number, baseError: number): string {
  if (baseError === 0)
    return "the base plan's error is already 0 on this data, so no change can improve it (measure on more data, or with a finer metric)";
  if (knobs === 0) return "no point could change dtype within the rules (nothing to plan)";
  if (measured <= 1) return "no other plan was measured (raise `evaluations`)";
  return `the ${measured - 1} other measured plan${measured === 2 ? " was" : "s were"} no more accurate at no lower latency (they changed nothing that matters on this data)`;
}

function ruleViolations(ir: Ir, march: March): string[] {
  return checkModel(ir, march)
    .violations.filter((v) => v.kind === "rule")
    .map((v) => v.message);
}

/**
 * The planner's error of one metric value: L1 and MSE as they are, cosine as 1 − cosine (smaller
 * is better, and additive enough), top-1 agreement as the share of samples whose class changed.
 */
const asError = (m: PlanMetric, v: number) => (m === "Cosine" || m === "Top1" ? 1 - v : v);
type PlanMetric = "L1" | "MSE" | "Cosine" | "Top1";

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

/** The setters (and the model transform) that realise a plan. */
function realise(
  plan: Plan,
  base: QconfigSetter,
): { qconfigSetter: QconfigSetter[]; rewrites: string[]; apply<T extends Module>(model: T): T } {
  const byName: Record<string, QConfig> = {};
  const rewrites: string[] = [];
  const int16 = getQconfig({ outDtype: qint16 });
  const dtype = (c: Choice) => (c === "int8" ? qint8 : qint16);
  for (const [key, choice] of plan) {
    if (key.endsWith(".cpu")) continue;
    if (key.endsWith(".rewrite")) {
      const path = key.slice(0, -".rewrite".length);
      rewrites.push(path);
      byName[path] = choice === "rewrite-fixed" ? { output: { dtype: qint16 } } : int16;
      byName[`${path}.mul`] =
        choice === "rewrite-fixed" ? getQconfig({ fixScale: FIXED_MUL_SCALE, outDtype: qint16 }) : int16;
      byName[`${path}.quant_weight`] = int16;
      byName[`${path}.quant_bias`] = int16;
    } else if (key.endsWith(".input")) {
      const op = key.slice(0, -".input".length);
      byName[op] = { ...(byName[op] ?? {}), input: { dtype: dtype(choice) } };
    } else if (key.endsWith(".weight")) {
      const op = key.slice(0, -".weight".length);
      byName[op] = { ...(byName[op] ?? {}), weight: { dtype: dtype(choice) } };
    } else {
      byName[key] = { ...(byName[key] ?? {}), output: { dtype: dtype(choice) } };
    }
  }
  // an op on the CPU is quantized nowhere, whatever else the plan says of its points
  for (const [key, choice] of plan)
    if (key.endsWith(".cpu") && choice === "cpu")
      byName[key.slice(0, -".cpu".length)] = { input: null, weight: null, output: null };
  return {
    qconfigSetter: Object.keys(byName).length > 0 ? [ModuleNameQconfigSetter(byName), base] : [base],
    rewrites,
    apply<T extends Module>(model: T): T {
      return rewrites.reduce((m, path) => replaceLinearWithBroadcastMulSum(m, path), model);
    },
  };
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
  const t0 = performance.now();
  const base = opts.base ?? defaultCalibrationQconfigSetter;
  const m: PlanMetric = opts.metric ?? "L1";
  const metricName: string = m;
  if (!["L1", "MSE", "Cosine", "Top1"].includes(m))
    throw errors.invalidArgument("planMixedPrecision", `metric '${String(m)}'`, "pass L1, MSE, Cosine or Top1");
  const maxEvals = opts.evaluations ?? 12;
  const batches: tf.Tensor[][] =
    data instanceof tf.Tensor
      ? [[data]]
      : (data as unknown[]).every((d) => d instanceof tf.Tensor)
        ? (data as tf.Tensor[]).map((d) => [d])
        : (data as tf.Tensor[][]);
  if (batches.length === 0)
    throw errors.invalidArgument("planMixedPrecision", "no data", "pass one or more input batches");
  let evaluations = 0;
  const progress = (done: number, total: number) =>
    reportProgress(opts.onProgress, { task: "planMixedPrecision", done, total, elapsedMs: performance.now() - t0 });
  /** prepare → calibrate on every batch → VALIDATION, then `use` the calibrated model (disposed after). */
  const calibrated = async <R>(
    model: Module,
    qconfigSetter: QconfigSetter[],
    use: (calib: Module) => R,
  ): Promise<R> => {
    const calib = prepare(model.eval(), batches[0], { qconfigSetter, warn: false, march: opts.march });
    try {
      setFakeQuantize(calib, FakeQuantState.CALIBRATION);
      await calibrate(calib, batches, { onProgress: () => {} });
      setFakeQuantize(calib, FakeQuantState.VALIDATION);
      return use(calib);
    } finally {
      calib.dispose();
    }
  };
  const measure = async (plan: Plan): Promise<{ error: number; ir: Ir }> => {
    const r = realise(plan, base);
    const model = r.apply(float);
    try {
      evaluations++;
      return await calibrated(model, r.qconfigSetter, (calib) => ({
        error: outputError(calib, float, batches, m),
        ir: exportModel(calib, batches[0]),
      }));
    } finally {
      if (model !== float) model.dispose();
    }
  };
  try {
    const sensitivityBatches = opts.sensitivityBatches ?? 1;
    if (!Number.isInteger(sensitivityBatches) || sensitivityBatches < 1) {
      throw errors.invalidArgument(
        "planMixedPrecision",
        `sensitivityBatches ${sensitivityBatches}`,
        "pass a whole number ≥ 1",
      );
    }
    // base plan, and one sensitivity pass per dtype
    const baseMeasured = await measure(new Map());
    const baseIr = baseMeasured.ir;
    progress(1, maxEvals + 3);
    const sens = (setter: QconfigSetter) =>
      calibrated(float, [setter], (calib) => ({
        rows: new QuantAnalysis(float, calib, { onProgress: () => {} })
          .sensitivity({ batches: batches.slice(0, sensitivityBatches), metric: m })
          .rows.map((r) => ({ ...r, value: asError(m, r.value) })),
        ops: preparedOps(calib),
      }));
    const all = (d: typeof qint8): QconfigSetter => ({
      setterName: `all ${d.name}`,
      qconfigFor: () => getQconfig({ weightDtype: d, outDtype: d }),
    });
    const s8 = await sens(all(qint8));
    const s16 = await sens(all(qint16));
    progress(3, maxEvals + 3);
    const keyOf = (r: { op_name: string; sensitive_type: string }) =>
      `${r.op_name}${r.sensitive_type === "weight" ? ".weight" : ""}`;
    const e16 = new Map(s16.rows.map((r) => [keyOf(r), r.value]));
    // each point's dtype under the base template, read from the base plan's export
    const baseDtype = new Map<string, DTypeName>();
    for (const n of baseIr.nodes) {
      if (findOp(n.type)?.role !== "passthrough" && n.output.quant.dtype !== "float32")
        baseDtype.set(n.name, n.output.quant.dtype);
      if (n.weight) baseDtype.set(`${n.name}.weight`, n.weight.quant.dtype);
    }
    const unplanned = checkModel(baseIr, opts.march)
      .violations.filter((v) => v.kind === "no-rule")
      .map((v) => v.op);
    const points: Point[] = s8.rows
      .filter((r) => baseDtype.has(keyOf(r)) && !unplanned.includes(r.op_name))
      .map((r) => ({
        key: keyOf(r),
        op: r.op_name,
        kind: r.sensitive_type,
        base: baseDtype.get(keyOf(r)) as DTypeName,
        e8: r.value,
        e16: e16.get(keyOf(r)) ?? r.value,
      }));
    const linears = s8.ops.filter((o) => o.info.type === "Linear").map((o) => o.info.modulePath || o.info.name);
    const dtypeIn = (p: Point, plan: Plan): DTypeName => {
      if (plan.has(`${p.op}.rewrite`)) return "qint16";
      const c = plan.get(p.key);
      return c === "int16" ? "qint16" : c === "int8" ? "qint8" : p.base;
    };
    /** The activation point whose value enters `op` (through ops that keep their input's scale). */
    const producerPoint = (op: string): Point | undefined => {
      let src = baseIr.nodes.find((n) => n.name === op)?.inputs[0]?.source;
      for (let guard = 0; src !== undefined && guard < 100; guard++) {
        const found = points.find((p) => p.key === src);
        if (found) return found;
        const node = baseIr.nodes.find((n) => n.name === src);
        src = node && findOp(node.type)?.role === "passthrough" ? node.inputs[0]?.source : undefined;
      }
      return undefined;
    };
    /** A rewrite's own measured effect beyond its points at int16 (its mul output scale), once measured. */
    const rewriteOffset = new Map<string, number>();
    const rawPredict = (plan: Plan) => {
      // a point of an op on the CPU adds nothing: it is not quantized
      let e = points.reduce(
        (a, p) => a + (plan.has(`${p.op}.cpu`) ? 0 : dtypeIn(p, plan) === "qint16" ? p.e16 : p.e8),
        0,
      );
      for (const [key, c] of plan) e += rewriteOffset.get(`${key}=${c}`) ?? 0;
      // an input lowered to int8 adds its producer's int8 error on top of what the producer keeps
      for (const [key, c] of plan) {
        if (!key.endsWith(".input") || c !== "int8") continue;
        const p = producerPoint(key.slice(0, -".input".length));
        if (p && dtypeIn(p, plan) === "qint16") e += p.e8 - p.e16;
      }
      return e;
    };
    let kappa = rawPredict(new Map()) > 0 ? baseMeasured.error / rawPredict(new Map()) : 1;
    const predict = (plan: Plan) => kappa * rawPredict(plan);
    const latency = (plan: Plan) => {
      try {
        return perf(irOf(baseIr, plan), opts.march).latencyMs;
      } catch {
        return Infinity; // a dtype pair the chip has no unit for
      }
    };
    const baseLatency = latency(new Map());
    // each knob's effect alone: Δerror (predicted) and Δlatency; a GEMM weight raised over an
    // int16 input on a march that forbids the pair comes with its input lowered to int8
    const knobs: { key: string; plan: Plan; dErr: number; dLat: number }[] = [];
    const addKnob = (key: string, plan: Plan) => {
      const dLat = latency(plan) - baseLatency;
      if (!Number.isFinite(dLat) || ruleViolations(irOf(baseIr, plan), opts.march).length > 0) return false;
      knobs.push({ key, plan, dErr: predict(plan) - predict(new Map()), dLat });
      return true;
    };
    for (const p of points) {
      const flip: Choice = p.base === "qint16" ? "int8" : "int16";
      const plan: Plan = new Map([[p.key, flip]]);
      if (addKnob(p.key, plan) || p.kind !== "weight" || flip !== "int16") continue;
      addKnob(
        p.key,
        new Map<string, Choice>([
          [p.key, "int16"],
          [`${p.op}.input`, "int8"],
        ]),
      );
    }
    // the rewrite is an answer to a march that refuses int16 × int16 on a Linear; elsewhere it only costs
    const refuses = (marchSpec(opts.march).ops.Linear?.forbidden ?? []).length > 0;
    for (const path of refuses ? linears : []) {
      for (const choice of ["rewrite", "rewrite-fixed"] as const)
        addKnob(`${path}.rewrite`, new Map([[`${path}.rewrite`, choice]]));
    }
    // the CPU fallback: the last k weighted ops and every op after them in float (one knob per k)
    const cpuFallback = opts.cpuFallback ?? 0;
    if (!Number.isInteger(cpuFallback) || cpuFallback < 0)
      throw errors.invalidArgument(
        "planMixedPrecision",
        `cpuFallback ${cpuFallback}`,
        "pass a whole number ≥ 0 (0: no op on the CPU)",
      );
    const weighted = baseIr.nodes.flatMap((n, i) => (n.weight ? [i] : []));
    for (let k = 1; k <= Math.min(cpuFallback, weighted.length); k++) {
      const tail = baseIr.nodes
        .slice(weighted[weighted.length - k])
        .filter((n) => findOp(n.type)?.role !== "passthrough" || n.weight);
      addKnob(`${tail[0].name}.cpu`, new Map(tail.map((n) => [`${n.name}.cpu`, "cpu" as Choice])));
    }
    /** Ops a plan keeps on the CPU: no other knob may touch their points. */
    const onCpu = (plan: Plan, key: string) => plan.has(`${key.replace(/\.(weight|input|rewrite|cpu)$/, "")}.cpu`);
    // Lagrangian sweep: for each λ every knob with dErr + λ·dLat < 0 is on; then rule repair
    const candidates = new Map<string, Plan>();
    const lambdas = Array.from({ length: opts.sweep ?? 40 }, (_, i) => 10 ** (-3 + (8 * i) / ((opts.sweep ?? 40) - 1)));
    for (const lambda of [0, ...lambdas]) {
      const plan: Plan = new Map();
      for (const k of knobs.sort((a, b) => a.dErr + lambda * a.dLat - (b.dErr + lambda * b.dLat))) {
        if (
          k.dErr + lambda * k.dLat >= 0 ||
          [...k.plan.keys()].some((key) => plan.has(key) || onCpu(plan, key)) ||
          plan.has(k.key)
        )
          continue;
        if ([...plan.keys()].some((key) => onCpu(k.plan, key))) continue;
        k.plan.forEach((v, key) => plan.set(key, v));
      }
      repair(plan, baseIr, opts.march, latency, predict);
      if (ruleViolations(irOf(baseIr, plan), opts.march).length === 0) candidates.set(planKey(plan), plan);
    }
    // measure: first each GEMM's own alternatives (int8 input + int16 weight, the rewrite with an
    // MSE or a fixed mul scale — the article's configurations), then plans spread along the
    // predicted front
    const chosen = new Map<string, Plan>();
    for (const k of knobs.filter((k) => k.key.endsWith(".rewrite") || k.key.endsWith(".cpu") || k.plan.size > 1)) {
      if (chosen.size < Math.floor(maxEvals / 2)) chosen.set(planKey(k.plan), k.plan);
    }
    const ranked = [...candidates.values()]
      .filter((p) => !chosen.has(planKey(p)))
      .sort((a, b) => latency(a) - latency(b));
    // the two ends of the predicted front always: the fastest plan and the most accurate one
    for (const end of [ranked[0], [...ranked].sort((a, b) => predict(a) - predict(b))[0]])
      if (end !== undefined) chosen.set(planKey(end), end);
    const room = maxEvals - 1 - chosen.size;
    const step = Math.max(1, ranked.length / Math.max(1, room));
    for (let i = 0; i < ranked.length && chosen.size < maxEvals - 1; i += step)
      chosen.set(planKey(ranked[Math.floor(i)]), ranked[Math.floor(i)]);
    if (ranked.length > 0 && chosen.size < maxEvals)
      chosen.set(planKey(ranked[ranked.length - 1]), ranked[ranked.length - 1]);
    const basePerf = perf(baseIr, opts.march);
    const measured: { plan: Plan; error: number; predicted: number; latency: number; mac16: number }[] = [
      {
        plan: new Map(),
        error: baseMeasured.error,
        predicted: predict(new Map()),
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
    for (const plan of chosen.values()) {
      if (plan.size === 0) continue;
      const m = await measure(plan);
      progress(3 + ++n, maxEvals + 3);
      if (!legalExport(plan, m.ir)) continue;
      // the measured plan's own export: its latency is exact (the search used the patched base IR)
      const p = perf(m.ir, opts.march);
      measured.push({ plan, error: m.error, predicted: predict(plan), latency: p.latencyMs, mac16: p.int16MacShare });
    }
    // re-fit κ to the measurements: the median ratio measured / raw prediction (robust to a plan
    // the additive model misjudges badly, such as a rewrite whose mul scale zeroes its outputs)
    const gap = () =>
      measured.reduce((a, m) => a + Math.abs(m.predicted - m.error) / Math.max(m.error, 1e-12), 0) / measured.length;
    const before = gap();
    const ratios = measured.map((m) => m.error / Math.max(rawPredict(m.plan), 1e-30)).sort((a, b) => a - b);
    kappa = ratios[Math.floor(ratios.length / 2)];
    measured.forEach((m) => (m.predicted = predict(m.plan)));
    // a rewrite measured alone tells its own effect (the mul-output scale the points do not see)
    for (const m of measured) {
      const keys = [...m.plan.keys()];
      if (keys.length !== 1 || !keys[0].endsWith(".rewrite")) continue;
      const id = `${keys[0]}=${m.plan.get(keys[0])}`;
      rewriteOffset.set(id, 0);
      rewriteOffset.set(id, m.error / kappa - rawPredict(m.plan));
    }
    measured.forEach((m) => (m.predicted = predict(m.plan)));
    // local repair: the plan predicted worst gets its largest single change reverted and measured;
    // the measured effect of that change replaces the additive model's guess for that point
    const tolerance = opts.tolerance ?? 0.25;
    const repairEvaluations = Math.max(0, Math.min(4, maxEvals + 4 - evaluations));
    for (let r = 0; r < repairEvaluations; r++) {
      const rel = (m: (typeof measured)[number]) => Math.abs(m.predicted - m.error) / Math.max(m.error, 1e-12);
      // (a rewrite's measured effect is its own: it is not spread over points)
      const worst = measured
        .filter(
          (m) =>
            [...m.plan.keys()].some((k) => points.some((p) => p.key === k)) &&
            ![...m.plan.keys()].some((k) => k.endsWith(".rewrite")),
        )
        .sort((a, b) => rel(b) - rel(a))[0];
      if (worst === undefined || rel(worst) <= tolerance) break;
      const effect = (key: string) => {
        const p = points.find((q) => q.key === key);
        return p === undefined ? 0 : Math.abs(p.e16 - p.e8);
      };
      const key = [...worst.plan.keys()]
        .filter((k) => points.some((p) => p.key === k))
        .sort((a, b) => effect(b) - effect(a))[0];
      if (key === undefined) break;
      const variant = new Map(worst.plan);
      variant.delete(key);
      if (
        measured.some((m) => planKey(m.plan) === planKey(variant)) ||
        ruleViolations(irOf(baseIr, variant), opts.march).length > 0
      )
        break;
      const m = await measure(variant);
      if (!legalExport(variant, m.ir)) break;
      const pv = perf(m.ir, opts.march);
      measured.push({
        plan: variant,
        error: m.error,
        predicted: predict(variant),
        latency: pv.latencyMs,
        mac16: pv.int16MacShare,
      });
      // the point's error at the plan's dtype, as measured: e(plan dtype) = e(base dtype) + Δ / κ
      const p = points.find((q) => q.key === key) as Point;
      const delta = (worst.error - m.error) / kappa;
      if (dtypeIn(p, worst.plan) === "qint16") p.e16 = Math.max(0, p.e8 + delta);
      else p.e8 = Math.max(0, p.e16 + delta);
      measured.forEach((x) => (x.predicted = predict(x.plan)));
    }
    const after = gap();
    // Pareto front of (measured error, latency)
    const front = measured
      .filter(
        (m) =>
          !measured.some(
            (o) =>
              o !== m && o.error <= m.error && o.latency <= m.latency && (o.error < m.error || o.latency < m.latency),
          ),
      )
      .sort((a, b) => a.latency - b.latency || a.error - b.error)
      .filter((m, i, all) => i === 0 || m.error !== all[i - 1].error || m.latency !== all[i - 1].latency);
    // Horizon-style top-k promotion, measured the same way
    const topk: MixedPrecisionPlan["topk"] = [];
    const promotable = points.filter((p) => p.base === "qint8").sort((a, b) => b.e8 - a.e8);
    for (const k of [1, 2, 4, 8].filter((k) => k <= promotable.length)) {
      const plan: Plan = new Map(promotable.slice(0, k).map((p) => [p.key, "int16"] as [string, Choice]));
      const m = await measure(plan);
      // judged on the realised export, like the front's plans; an illegal one keeps the search IR's latency estimate
      const legal = ruleViolations(m.ir, opts.march).length === 0;
      topk.push({
        k,
        measured_error: m.error,
        latency_ms: legal ? perf(m.ir, opts.march).latencyMs : latency(plan),
        legal,
      });
    }
    // the last step reported: a progress bar ends full (the measurements stop where the budget allows, not at its count)
    progress(maxEvals + 3, maxEvals + 3);
    const rows: PlanRow[] = front.map((m, i) => ({
      point: i,
      measured_error: m.error,
      predicted_error: m.predicted,
      latency_ms: m.latency,
      int16_mac_share: m.mac16,
      rewrites: [...m.plan.keys()].filter((k) => k.endsWith(".rewrite")).length,
      choices: [...m.plan].map(([k, v]) => `${k.replace(/\.(rewrite|cpu)$/, "")}:${v}`).join(" ") || "(base)",
    }));
    const columns = [
      "point",
      "measured_error",
      "predicted_error",
      "latency_ms",
      "int16_mac_share",
      "rewrites",
      "choices",
    ];
    const elapsedMs = performance.now() - t0;
    const table = makeTable(
      `Mixed-precision front on ${opts.march} (${m === "Cosine" ? "1 − cosine" : m === "Top1" ? "share of samples whose top-1 class changed" : m}): ${rows.length} plans (${evaluations} full-model evaluations, ${(elapsedMs / 1000).toFixed(1)} s; prediction gap ${(100 * before).toFixed(0)}% → ${(100 * after).toFixed(0)}%)` +
        (unplanned.length ? `; not planned (no ${opts.march} rule, assumed CPU): ${unplanned.join(", ")}` : "") +
        (rows.length === 1
          ? `; a front of one plan: ${oneWhy(measured.length, knobs.length, baseMeasured.error)}`
          : ""),
      rows,
      columns,
      (r) => ({ ...r }),
    );
    const result: MixedPrecisionPlan = {
      ...table,
      march: opts.march,
      chosen: null,
      unplanned,
      refused,
      evaluations,
      predictionGap: { before, after },
      topk,
      elapsedMs,
      setter: (i: number) => {
        const m = front[i];
        if (m === undefined)
          throw errors.invalidArgument("plan.setter", `no front point ${i}`, `pass 0..${front.length - 1}`);
        return realise(m.plan, base);
      },
      toJSON: (i?: number) => {
        const k = i ?? result.chosen ?? rows.reduce((b, r) => (r.measured_error < b.measured_error ? r : b)).point;
        const m = front[k];
        if (m === undefined)
          throw errors.invalidArgument("plan.toJSON", `no front point ${k}`, `pass 0..${front.length - 1}`);
        const baseName = Object.entries(BUILT_IN_BASES).find(([, v]) => v === base)?.[0] ?? base.setterName;
        return {
          format: "quantbook-plan",
          version: 1,
          march: opts.march,
          base: baseName,
          metric: m === undefined ? "L1" : metricName,
          choices: Object.fromEntries([...m.plan].sort(([a], [b]) => a.localeCompare(b))),
          measured_error: m.error,
          latency_ms: m.latency,
        };
      },
      save: (path: string, i?: number) => {
        writeFileSync(path, JSON.stringify(result.toJSON(i), null, 2) + "\n");
      },
      pick: (budget) => {
        if (budget.latencyMs !== undefined) {
          const ok = rows.filter((r) => r.latency_ms <= budget.latencyMs!);
          if (ok.length === 0)
            throw errors.invalidArgument(
              "plan.pick",
              `no plan within ${budget.latencyMs} ms`,
              `the fastest is point 0 at ${rows[0].latency_ms.toFixed(4)} ms`,
            );
          return ok.reduce((b, r) => (r.measured_error < b.measured_error ? r : b)).point;
        }
        if (budget.error !== undefined) {
          const ok = rows.filter((r) => r.measured_error <= budget.error!);
          if (ok.length === 0) {
            const best = rows.reduce((b, r) => (r.measured_error < b.measured_error ? r : b));
            throw errors.invalidArgument(
              "plan.pick",
              `no plan reaches error ${budget.error}`,
              `the closest is point ${best.point} with ${best.measured_error.toExponential(3)}`,
            );
          }
          return ok.reduce((b, r) => (r.latency_ms < b.latency_ms ? r : b)).point;
        }
        throw errors.invalidArgument("plan.pick", "no budget", "pass { latencyMs } or { error }");
      },
      plot: () => ({
        $schema: "https://vega.github.io/schema/vega-lite/v5.json",
        title: `Error vs estimated latency on ${opts.march}`,
        data: {
          values: [
            ...rows.map((r) => ({
              series: "planner front",
              latency_ms: r.latency_ms,
              error: r.measured_error,
              label: r.choices,
            })),
            ...topk
              .filter((t) => t.legal)
              .map((t) => ({
                series: "top-k promotion",
                latency_ms: t.latency_ms,
                error: t.measured_error,
                label: `top-${t.k}`,
              })),
          ],
        },
        mark: { type: "line", point: true },
        encoding: {
          x: { field: "latency_ms", type: "quantitative", title: "estimated latency (ms)", scale: { zero: false } },
          y: {
            field: "error",
            type: "quantitative",
            title:
              m === "L1"
                ? "mean |output − float|"
                : m === "MSE"
                  ? "output MSE"
                  : m === "Top1"
                    ? "top-1 changed (share)"
                    : "1 − output cosine",
            scale: { type: m === "Top1" ? "linear" : "log" },
          },
          color: { field: "series", type: "nominal" },
          tooltip: [{ field: "series" }, { field: "label" }, { field: "latency_ms" }, { field: "error" }],
        },
      }),
    };
    if (opts.budget) result.chosen = result.pick(opts.budget);
    return result;
  } catch (e) {
    // an interrupt inside one of the planner's steps (a calibration, a sensitivity pass) is the planner's
    if (e instanceof InterruptedError && !e.message.startsWith("planMixedPrecision")) {
      const step = /^(\w+)/.exec(e.message)?.[1] ?? "a step";
      throw new InterruptedError(
        `planMixedPrecision (in its ${step} step, after ${evaluations} evaluations; the float model is unchanged)`,
      );
    }
    throw e;
  }
}

/** A GEMM the march refuses (int16 input with int16 weight): the cheapest legal alternative by predicted error + latency. */
function repair(
  plan: Plan,
  baseIr: Ir,
  march: March,
  latency: (p: Plan) => number,
  predict: (p: Plan) => number,
): void {
  for (let guard = 0; guard < 50; guard++) {
    const ir = irOf(baseIr, plan);
    const bad = checkModel(ir, march).violations.find((v) => v.kind === "rule");
    if (bad === undefined) return;
    const node = ir.nodes.find((n) => n.name === bad.op) as IrNode;
    const producer = node.inputs[0]?.source ?? "";
    const options: Plan[] = [];
    const dropWeight = new Map(plan);
    dropWeight.delete(`${node.name}.weight`);
    options.push(dropWeight);
    const dropInput = new Map(plan);
    dropInput.delete(producer);
    options.push(dropInput);
    if (node.type === "Linear") options.push(new Map([...dropWeight, [`${node.name}.rewrite`, "rewrite"]]));
    const cost = (p: Plan) => predict(p) + 1e-3 * latency(p);
    const best = options.filter((p) => planKey(p) !== planKey(plan)).sort((a, b) => cost(a) - cost(b))[0];
    if (best === undefined) {
      plan.clear();
      return;
    }
    plan.clear();
    best.forEach((v, k) => plan.set(k, v));
  }
}
