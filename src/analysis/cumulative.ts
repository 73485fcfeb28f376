/**
 * The cumulative-error curve: for each op in execution order, the model's output error when
 * every quantization point up to and including that op is on (the rest float). Where the curve
 * climbs steadily, error accumulates; where it jumps, one op breaks it — the picture the
 * reference toolchain's debugger draws. One whole-model run per op (on onnxruntime when the
 * model runs there).
 */
import * as tf from "@tensorflow/tfjs";
import type { Module } from "../nn/module";
import { FakeQuantState } from "../quant/state";
import type { FakeQuantizer } from "../quant/fakeQuantizer";
import { reportProgress, type ProgressCallback } from "../util/progress";
import { ortModel } from "../workflow/engine";
import type { QuantRuntime } from "../workflow/quantRuntime";
import { metric, type Metric } from "./metrics";
import { runModel, withPoints } from "./runner";

export interface CumulativeRow {
  /** Position in execution order. */
  index: number;
  op_name: string;
  op_type: string;
  /** The metric's value with every point up to this op on. */
  value: number;
  /** The change from the previous row: a jump marks an op that breaks the output. */
  step: number;
}

function errorOf(m: Metric, refs: tf.Tensor[], outs: tf.Tensor[]): number {
  return tf.tidy(() =>
    metric(m, tf.concat(refs.map((r) => tf.reshape(r, [-1]))), tf.concat(outs.map((o) => tf.reshape(o, [-1])))),
  );
}

export function runCumulative(
  model: Module,
  rt: QuantRuntime,
  args: tf.Tensor[],
  m: Metric,
  onProgress?: ProgressCallback,
): CumulativeRow[] {
  const order = new Map([...rt.ops.keys()].map((name, i) => [name, i]));
  const owner = new Map<FakeQuantizer, number>();
  for (const [op, , fq] of rt.fakeQuantizers()) {
    const i = order.get(op.info.name) as number;
    owner.set(fq, Math.min(owner.get(fq) ?? i, i));
  }
  const ops = [...rt.ops.values()];
  const fast = ortModel(model, rt, args);
  const run = (upTo: number): tf.Tensor[] =>
    fast !== null
      ? fast.forward(args, (s) => (owner.get(s.fq) ?? Infinity) <= upTo, "cumulativeError")
      : withPoints(
          rt,
          FakeQuantState.VALIDATION,
          (_o, _r, fq) => (fq.fakeQuantOverride = (owner.get(fq) ?? Infinity) <= upTo),
          () => runModel(model, rt, args),
        );
  const refs = run(-1);
  const start = performance.now();
  try {
    let previous = 0;
    return ops.map((op, i) => {
      const outs = run(i);
      const value = errorOf(m, refs, outs);
      tf.dispose(outs);
      const row = { index: i, op_name: op.info.name, op_type: op.info.type, value, step: value - previous };
      previous = value;
      reportProgress(onProgress, {
        task: "cumulativeError",
        done: i + 1,
        total: ops.length,
        elapsedMs: performance.now() - start,
      });
      return row;
    });
  } finally {
    tf.dispose(refs);
  }
}

/** The curve as a Vega-Lite line chart (op order on x, the metric on y; the op named on hover). */
export function cumulativePlot(rows: CumulativeRow[], m: Metric): Record<string, unknown> {
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v5.json",
    title: `Output ${m} with every op up to each one quantized`,
    width: 600,
    data: {
      values: rows.map((r) => ({ index: r.index, op: r.op_name, type: r.op_type, value: r.value, step: r.step })),
    },
    mark: { type: "line", point: true },
    encoding: {
      x: { field: "index", type: "quantitative", title: "op (execution order)" },
      y: { field: "value", type: "quantitative", title: m },
      tooltip: [{ field: "op" }, { field: "type" }, { field: "value" }, { field: "step" }],
    },
  };
}
