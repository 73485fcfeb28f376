/**
 * What the planner returns: the measured Pareto front as a table, and the means to use it — the
 * setters of a point, a pick by budget, a reviewable JSON file, a chart.
 */
import { writeFileSync } from "node:fs";
import type { March } from "../march/march";
import { errors } from "../messages";
import { makeTable } from "../util/table";
import type { QconfigSetter } from "../workflow/qconfigSetters";
import {
  BUILT_IN_BASES,
  oneWhy,
  realise,
  type MixedPrecisionPlan,
  type Plan,
  type PlanMetric,
  type PlanRow,
} from "./plan";

/** One measured plan. */
export interface Measured {
  plan: Plan;
  error: number;
  predicted: number;
  latency: number;
  mac16: number;
}

/** Everything the result reports, as the search left it. */
export interface SearchOutcome {
  march: March;
  base: QconfigSetter;
  metric: PlanMetric;
  /** The Pareto front, fastest first. */
  front: Measured[];
  /** Plans measured (the front's and the others), knobs the search had, the base plan's error. */
  measuredCount: number;
  knobCount: number;
  baseError: number;
  unplanned: string[];
  refused: string[];
  evaluations: number;
  predictionGap: { before: number; after: number };
  topk: MixedPrecisionPlan["topk"];
  elapsedMs: number;
}

const COLUMNS = ["point", "measured_error", "predicted_error", "latency_ms", "int16_mac_share", "rewrites", "choices"];

function rowsOf(front: Measured[]): PlanRow[] {
  return front.map((m, i) => ({
    point: i,
    measured_error: m.error,
    predicted_error: m.predicted,
    latency_ms: m.latency,
    int16_mac_share: m.mac16,
    rewrites: [...m.plan.keys()].filter((k) => k.endsWith(".rewrite")).length,
    choices: [...m.plan].map(([k, v]) => `${k.replace(/\.(rewrite|cpu)$/, "")}:${v}`).join(" ") || "(base)",
  }));
}

function caption(o: SearchOutcome, rows: PlanRow[]): string {
  const m = o.metric;
  const what = m === "Cosine" ? "1 − cosine" : m === "Top1" ? "share of samples whose top-1 class changed" : m;
  const { before, after } = o.predictionGap;
  return (
    `Mixed-precision front on ${o.march} (${what}): ${rows.length} plans (${o.evaluations} full-model evaluations, ${(o.elapsedMs / 1000).toFixed(1)} s; prediction gap ${(100 * before).toFixed(0)}% → ${(100 * after).toFixed(0)}%)` +
    (o.unplanned.length ? `; not planned (no ${o.march} rule, assumed CPU): ${o.unplanned.join(", ")}` : "") +
    (rows.length === 1 ? `; a front of one plan: ${oneWhy(o.measuredCount, o.knobCount, o.baseError)}` : "")
  );
}

/** The point of lowest error within `latencyMs`, or of lowest latency within `error`. */
function pickPoint(rows: PlanRow[], budget: { latencyMs?: number; error?: number }): number {
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
}

/** The front and the top-k promotion on one chart (Vega-Lite). */
function frontChart(o: SearchOutcome, rows: PlanRow[]): Record<string, unknown> {
  const m = o.metric;
  const title =
    m === "L1"
      ? "mean |output − float|"
      : m === "MSE"
        ? "output MSE"
        : m === "Top1"
          ? "top-1 changed (share)"
          : "1 − output cosine";
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v5.json",
    title: `Error vs estimated latency on ${o.march}`,
    data: {
      values: [
        ...rows.map((r) => ({
          series: "planner front",
          latency_ms: r.latency_ms,
          error: r.measured_error,
          label: r.choices,
        })),
        ...o.topk
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
      y: { field: "error", type: "quantitative", title, scale: { type: m === "Top1" ? "linear" : "log" } },
      color: { field: "series", type: "nominal" },
      tooltip: [{ field: "series" }, { field: "label" }, { field: "latency_ms" }, { field: "error" }],
    },
  };
}

/** The planner's result over the search's outcome. */
export function planResult(o: SearchOutcome): MixedPrecisionPlan {
  const { front } = o;
  const rows = rowsOf(front);
  const point = (where: string, i: number) => {
    const m = front[i];
    if (m === undefined) throw errors.invalidArgument(where, `no front point ${i}`, `pass 0..${front.length - 1}`);
    return m;
  };
  const result: MixedPrecisionPlan = {
    ...makeTable(caption(o, rows), rows, COLUMNS, (r) => ({ ...r })),
    march: o.march,
    chosen: null,
    unplanned: o.unplanned,
    refused: o.refused,
    evaluations: o.evaluations,
    predictionGap: o.predictionGap,
    topk: o.topk,
    elapsedMs: o.elapsedMs,
    setter: (i: number) => realise(point("plan.setter", i).plan, o.base),
    toJSON: (i?: number) => {
      const k = i ?? result.chosen ?? rows.reduce((b, r) => (r.measured_error < b.measured_error ? r : b)).point;
      const m = point("plan.toJSON", k);
      const baseName = Object.entries(BUILT_IN_BASES).find(([, v]) => v === o.base)?.[0] ?? o.base.setterName;
      return {
        format: "quantbook-plan",
        version: 1,
        march: o.march,
        base: baseName,
        metric: o.metric,
        choices: Object.fromEntries([...m.plan].sort(([a], [b]) => a.localeCompare(b))),
        measured_error: m.error,
        latency_ms: m.latency,
      };
    },
    save: (path: string, i?: number) => {
      writeFileSync(path, JSON.stringify(result.toJSON(i), null, 2) + "\n");
    },
    pick: (budget) => pickPoint(rows, budget),
    plot: () => frontChart(o, rows),
  };
  return result;
}
