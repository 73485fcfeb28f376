/**
 * The planner's vocabulary: a plan (a choice per quantization point), the points it chooses for,
 * what a plan does to the base IR (for latency and the chip check), the setters that realise it,
 * and the public shapes of its result and of a saved plan.
 */
import type { Ir, IrNode } from "../ir/types";
import { checkModel } from "../march/check";
import type { March } from "../march/march";
import type { Module } from "../nn/module";
import { findOp } from "../ops";
import { qint16, qint8, type DTypeName } from "../quant/dtypes";
import { getQconfig, type QConfig } from "../quant/qconfig";
import { replaceLinearWithBroadcastMulSum } from "../transforms/linearToMulSum";
import type { Table } from "../util/table";
import {
  calibration8bitWeight16bitActQconfigSetter,
  defaultCalibrationQconfigSetter,
  defaultQatQconfigSetter,
  ModuleNameQconfigSetter,
  qat8bitWeight16bitActQconfigSetter,
  type QconfigSetter,
} from "../workflow/qconfigSetters";

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
export type Plan = Map<string, Choice>;

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

export const BUILT_IN_BASES: Record<string, QconfigSetter> = {
  calibration8bitWeight16bitActQconfigSetter,
  defaultCalibrationQconfigSetter,
  qat8bitWeight16bitActQconfigSetter,
  defaultQatQconfigSetter,
};

export interface Point {
  key: string;
  op: string;
  kind: "activation" | "weight";
  /** The dtype the base template gives it. */
  base: DTypeName;
  e8: number;
  e16: number;
}

export const FIXED_MUL_SCALE = 7 / 32767;

export function planKey(p: Plan): string {
  return [...p]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `${k}=${v}`)
    .join(",");
}

/** The base IR with a plan's dtypes (rewrites as Mul + Sum + Add), for perf and the chip check. */
export function irOf(base: Ir, plan: Plan): Ir {
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
export function oneWhy(measured: number, knobs: number, baseError: number): string {
  if (baseError === 0)
    return "the base plan's error is already 0 on this data, so no change can improve it (measure on more data, or with a finer metric)";
  if (knobs === 0) return "no point could change dtype within the rules (nothing to plan)";
  if (measured <= 1) return "no other plan was measured (raise `evaluations`)";
  return `the ${measured - 1} other measured plan${measured === 2 ? " was" : "s were"} no more accurate at no lower latency (they changed nothing that matters on this data)`;
}

export function ruleViolations(ir: Ir, march: March): string[] {
  return checkModel(ir, march)
    .violations.filter((v) => v.kind === "rule")
    .map((v) => v.message);
}

/**
 * The planner's error of one metric value: L1 and MSE as they are, cosine as 1 − cosine (smaller
 * is better, and additive enough), top-1 agreement as the share of samples whose class changed.
 */
export const asError = (m: PlanMetric, v: number) => (m === "Cosine" || m === "Top1" ? 1 - v : v);
export type PlanMetric = "L1" | "MSE" | "Cosine" | "Top1";

/** The setters (and the model transform) that realise a plan. */
export function realise(
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

/** A GEMM the march refuses (int16 input with int16 weight): the cheapest legal alternative by predicted error + latency. */
export function repair(
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
