/**
 * The planner's search, step by step: the points and their errors at each dtype, the additive
 * error model over them, the knobs (one change each, with its predicted effect on error and
 * latency), the Lagrangian sweep that combines knobs into candidate plans, the choice of plans to
 * measure, and the Pareto front of what was measured.
 */
import type { Ir } from "../ir/types";
import type { March } from "../march/march";
import { marchSpec } from "../march/data";
import { errors } from "../messages";
import { findOp } from "../ops";
import type { DTypeName } from "../quant/dtypes";
import { irOf, planKey, repair, ruleViolations, type Choice, type Plan, type Point } from "./plan";
import type { MixedPrecisionPlan } from "./plan";
import type { Measured } from "./result";
import { perf } from "../march/perf";

/** A sensitivity row as the planner reads it (value: the error at that dtype). */
export interface SensRow {
  op_name: string;
  sensitive_type: "activation" | "weight";
  value: number;
}

export const keyOf = (r: { op_name: string; sensitive_type: string }) =>
  `${r.op_name}${r.sensitive_type === "weight" ? ".weight" : ""}`;

/** The points the plan chooses for: every quantized point of the base export the march has a rule for. */
export function pointsOf(s8: SensRow[], s16: SensRow[], baseIr: Ir, unplanned: string[]): Point[] {
  const e16 = new Map(s16.map((r) => [keyOf(r), r.value]));
  // each point's dtype under the base template, read from the base plan's export
  const baseDtype = new Map<string, DTypeName>();
  for (const n of baseIr.nodes) {
    if (findOp(n.type)?.role !== "passthrough" && n.output.quant.dtype !== "float32")
      baseDtype.set(n.name, n.output.quant.dtype);
    if (n.weight) baseDtype.set(`${n.name}.weight`, n.weight.quant.dtype);
  }
  return s8
    .filter((r) => baseDtype.has(keyOf(r)) && !unplanned.includes(r.op_name))
    .map((r) => ({
      key: keyOf(r),
      op: r.op_name,
      kind: r.sensitive_type,
      base: baseDtype.get(keyOf(r)) as DTypeName,
      e8: r.value,
      e16: e16.get(keyOf(r)) ?? r.value,
    }));
}

/**
 * A plan's predicted error: the sum of its points' errors at their dtypes (plus what rewrites and
 * lowered inputs add), scaled by κ so that the prediction meets the measurements.
 */
export class ErrorModel {
  kappa = 1;
  /** A rewrite's own measured effect beyond its points at int16 (its mul output scale), once measured. */
  readonly rewriteOffset = new Map<string, number>();

  constructor(
    readonly points: Point[],
    private readonly baseIr: Ir,
  ) {}

  dtypeIn(p: Point, plan: Plan): DTypeName {
    if (plan.has(`${p.op}.rewrite`)) return "qint16";
    const c = plan.get(p.key);
    return c === "int16" ? "qint16" : c === "int8" ? "qint8" : p.base;
  }

  /** The activation point whose value enters `op` (through ops that keep their input's scale). */
  producerPoint(op: string): Point | undefined {
    let src = this.baseIr.nodes.find((n) => n.name === op)?.inputs[0]?.source;
    for (let guard = 0; src !== undefined && guard < 100; guard++) {
      const found = this.points.find((p) => p.key === src);
      if (found) return found;
      const node = this.baseIr.nodes.find((n) => n.name === src);
      src = node && findOp(node.type)?.role === "passthrough" ? node.inputs[0]?.source : undefined;
    }
    return undefined;
  }

  raw(plan: Plan): number {
    // a point of an op on the CPU adds nothing: it is not quantized
    let e = this.points.reduce(
      (a, p) => a + (plan.has(`${p.op}.cpu`) ? 0 : this.dtypeIn(p, plan) === "qint16" ? p.e16 : p.e8),
      0,
    );
    for (const [key, c] of plan) e += this.rewriteOffset.get(`${key}=${c}`) ?? 0;
    // an input lowered to int8 adds its producer's int8 error on top of what the producer keeps
    for (const [key, c] of plan) {
      if (!key.endsWith(".input") || c !== "int8") continue;
      const p = this.producerPoint(key.slice(0, -".input".length));
      if (p && this.dtypeIn(p, plan) === "qint16") e += p.e8 - p.e16;
    }
    return e;
  }

  predict(plan: Plan): number {
    return this.kappa * this.raw(plan);
  }
}

/** One change of the base plan, with its predicted effect. */
export interface Knob {
  key: string;
  plan: Plan;
  dErr: number;
  dLat: number;
}

export interface KnobContext {
  points: Point[];
  linears: string[];
  baseIr: Ir;
  march: March;
  cpuFallback: number;
  latency: (p: Plan) => number;
  predict: (p: Plan) => number;
}

/**
 * Each knob's effect alone: Δerror (predicted) and Δlatency. A GEMM weight raised over an int16
 * input on a march that forbids the pair comes with its input lowered to int8; a Linear may be
 * rewritten where the march refuses int16 × int16; the last k weighted ops may go to the CPU.
 */
export function buildKnobs(c: KnobContext): Knob[] {
  const knobs: Knob[] = [];
  const baseLatency = c.latency(new Map());
  const addKnob = (key: string, plan: Plan) => {
    const dLat = c.latency(plan) - baseLatency;
    if (!Number.isFinite(dLat) || ruleViolations(irOf(c.baseIr, plan), c.march).length > 0) return false;
    knobs.push({ key, plan, dErr: c.predict(plan) - c.predict(new Map()), dLat });
    return true;
  };
  for (const p of c.points) {
    const flip: Choice = p.base === "qint16" ? "int8" : "int16";
    if (addKnob(p.key, new Map([[p.key, flip]])) || p.kind !== "weight" || flip !== "int16") continue;
    addKnob(
      p.key,
      new Map<string, Choice>([
        [p.key, "int16"],
        [`${p.op}.input`, "int8"],
      ]),
    );
  }
  // the rewrite is an answer to a march that refuses int16 × int16 on a Linear; elsewhere it only costs
  const refuses = (marchSpec(c.march).ops.Linear?.forbidden ?? []).length > 0;
  for (const path of refuses ? c.linears : []) {
    for (const choice of ["rewrite", "rewrite-fixed"] as const)
      addKnob(`${path}.rewrite`, new Map([[`${path}.rewrite`, choice]]));
  }
  // the CPU fallback: the last k weighted ops and every op after them in float (one knob per k)
  if (!Number.isInteger(c.cpuFallback) || c.cpuFallback < 0)
    throw errors.invalidArgument(
      "planMixedPrecision",
      `cpuFallback ${c.cpuFallback}`,
      "pass a whole number ≥ 0 (0: no op on the CPU)",
    );
  const weighted = c.baseIr.nodes.flatMap((n, i) => (n.weight ? [i] : []));
  for (let k = 1; k <= Math.min(c.cpuFallback, weighted.length); k++) {
    const tail = c.baseIr.nodes
      .slice(weighted[weighted.length - k])
      .filter((n) => findOp(n.type)?.role !== "passthrough" || n.weight);
    addKnob(`${tail[0].name}.cpu`, new Map(tail.map((n) => [`${n.name}.cpu`, "cpu" as Choice])));
  }
  return knobs;
}

/** Ops a plan keeps on the CPU: no other knob may touch their points. */
const onCpu = (plan: Plan, key: string) => plan.has(`${key.replace(/\.(weight|input|rewrite|cpu)$/, "")}.cpu`);

/** Lagrangian sweep: for each λ every knob with dErr + λ·dLat < 0 is on; then rule repair. */
export function sweepCandidates(knobs: Knob[], c: KnobContext, sweep: number): Map<string, Plan> {
  const candidates = new Map<string, Plan>();
  const lambdas = Array.from({ length: sweep }, (_, i) => 10 ** (-3 + (8 * i) / (sweep - 1)));
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
    repair(plan, c.baseIr, c.march, c.latency, c.predict);
    if (ruleViolations(irOf(c.baseIr, plan), c.march).length === 0) candidates.set(planKey(plan), plan);
  }
  return candidates;
}

/**
 * The plans to measure: first each GEMM's own alternatives (int8 input + int16 weight, the rewrite
 * with an MSE or a fixed mul scale — the article's configurations), then plans spread along the
 * predicted front, its two ends always.
 */
export function choosePlans(
  knobs: Knob[],
  candidates: Map<string, Plan>,
  latency: (p: Plan) => number,
  predict: (p: Plan) => number,
  maxEvals: number,
): Map<string, Plan> {
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
  return chosen;
}

/** The Pareto front of (measured error, latency), fastest first, duplicates dropped. */
export function paretoFront(measured: Measured[]): Measured[] {
  return measured
    .filter(
      (m) =>
        !measured.some(
          (o) =>
            o !== m && o.error <= m.error && o.latency <= m.latency && (o.error < m.error || o.latency < m.latency),
        ),
    )
    .sort((a, b) => a.latency - b.latency || a.error - b.error)
    .filter((m, i, all) => i === 0 || m.error !== all[i - 1].error || m.latency !== all[i - 1].latency);
}

/**
 * Re-fits κ to the measurements — the median ratio measured / raw prediction, robust to a plan
 * the additive model misjudges badly (a rewrite whose mul scale zeroes its outputs) — and takes
 * a rewrite measured alone as its own effect (the mul-output scale the points do not see).
 */
export function refit(measured: Measured[], model: ErrorModel): void {
  const ratios = measured.map((m) => m.error / Math.max(model.raw(m.plan), 1e-30)).sort((a, b) => a - b);
  model.kappa = ratios[Math.floor(ratios.length / 2)];
  for (const m of measured) {
    const keys = [...m.plan.keys()];
    if (keys.length !== 1 || !keys[0].endsWith(".rewrite")) continue;
    const id = `${keys[0]}=${m.plan.get(keys[0])}`;
    model.rewriteOffset.set(id, 0);
    model.rewriteOffset.set(id, m.error / model.kappa - model.raw(m.plan));
  }
  measured.forEach((m) => (m.predicted = model.predict(m.plan)));
}

export type Measure = (plan: Plan) => Promise<{ error: number; ir: Ir }>;

export interface RefineContext {
  measured: Measured[];
  model: ErrorModel;
  baseIr: Ir;
  march: March;
  /** Stop when every measured plan is predicted within this relative error. */
  tolerance: number;
  /** Measurements it may spend. */
  budget: number;
  measure: Measure;
  /** The realised export passes the chip rules (a refused one is recorded by the caller). */
  legalExport: (plan: Plan, ir: Ir) => boolean;
}

/**
 * Local repair: the plan predicted worst gets its largest single change reverted and measured;
 * the measured effect of that change replaces the additive model's guess for that point.
 */
export async function refine(c: RefineContext): Promise<void> {
  const { measured, model } = c;
  const points = model.points;
  const isPoint = (k: string) => points.some((p) => p.key === k);
  const rel = (m: Measured) => Math.abs(m.predicted - m.error) / Math.max(m.error, 1e-12);
  const effect = (key: string) => {
    const p = points.find((q) => q.key === key);
    return p === undefined ? 0 : Math.abs(p.e16 - p.e8);
  };
  for (let r = 0; r < c.budget; r++) {
    // (a rewrite's measured effect is its own: it is not spread over points)
    const worst = measured
      .filter((m) => [...m.plan.keys()].some(isPoint) && ![...m.plan.keys()].some((k) => k.endsWith(".rewrite")))
      .sort((a, b) => rel(b) - rel(a))[0];
    if (worst === undefined || rel(worst) <= c.tolerance) break;
    const key = [...worst.plan.keys()].filter(isPoint).sort((a, b) => effect(b) - effect(a))[0];
    if (key === undefined) break;
    const variant = new Map(worst.plan);
    variant.delete(key);
    if (
      measured.some((m) => planKey(m.plan) === planKey(variant)) ||
      ruleViolations(irOf(c.baseIr, variant), c.march).length > 0
    )
      break;
    const m = await c.measure(variant);
    if (!c.legalExport(variant, m.ir)) break;
    const pv = perf(m.ir, c.march);
    measured.push({
      plan: variant,
      error: m.error,
      predicted: model.predict(variant),
      latency: pv.latencyMs,
      mac16: pv.int16MacShare,
    });
    // the point's error at the plan's dtype, as measured: e(plan dtype) = e(base dtype) + Δ / κ
    const p = points.find((q) => q.key === key) as Point;
    const delta = (worst.error - m.error) / model.kappa;
    if (model.dtypeIn(p, worst.plan) === "qint16") p.e16 = Math.max(0, p.e8 + delta);
    else p.e8 = Math.max(0, p.e16 + delta);
    measured.forEach((x) => (x.predicted = model.predict(x.plan)));
  }
}

/** Horizon-style promotion of the k most sensitive int8 points to int16 (k = 1, 2, 4, 8), measured. */
export async function topkPromotion(
  points: Point[],
  measure: Measure,
  march: March,
  latency: (p: Plan) => number,
): Promise<MixedPrecisionPlan["topk"]> {
  const topk: MixedPrecisionPlan["topk"] = [];
  const promotable = points.filter((p) => p.base === "qint8").sort((a, b) => b.e8 - a.e8);
  for (const k of [1, 2, 4, 8].filter((k) => k <= promotable.length)) {
    const plan: Plan = new Map(promotable.slice(0, k).map((p) => [p.key, "int16"] as [string, Choice]));
    const m = await measure(plan);
    // judged on the realised export, like the front's plans; an illegal one keeps the search IR's latency estimate
    const legal = ruleViolations(m.ir, march).length === 0;
    topk.push({ k, measured_error: m.error, latency_ms: legal ? perf(m.ir, march).latencyMs : latency(plan), legal });
  }
  return topk;
}
