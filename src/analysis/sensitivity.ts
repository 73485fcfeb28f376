/**
 * Sensitivity (the reference debug tool's algorithm): with every fake-quantizer off, switch on
 * one quantization point — an op's output ("activation") or its weight ("weight") — run the
 * whole model and measure its output against the float output. Worst first.
 *
 * Ops that run before the point under test compute exactly what the float run computed, so by
 * default their recorded float outputs are fed back instead of recomputing them (`reuseFloat`).
 */
import * as tf from "@tensorflow/tfjs";
import type { Module } from "../nn/module";
import { FakeQuantState } from "../quant/state";
import { reportProgress, type ProgressCallback } from "../util/progress";
import type { PreparedOp, QuantRuntime, TapRole } from "../workflow/quantRuntime";
import { largerIsWorse, metric, type Metric } from "./metrics";
import { pct, runModel, withPoints } from "./runner";
import { ortModel } from "../workflow/engine";

export interface SensitivityRow {
  op_name: string;
  sensitive_type: "activation" | "weight";
  op_type: string;
  /** The metric's value (column named after the metric in tables). */
  value: number;
  quant_dtype: string;
  flops: string;
}

export interface SensitivityOptions {
  metric?: Metric;
  /** Feed recorded float outputs to the ops before the one under test (default true). */
  reuseFloat?: boolean | undefined;
  onProgress?: ProgressCallback | undefined;
}

function errorOf(m: Metric, refs: tf.Tensor[], outs: tf.Tensor[]): number {
  if (outs.length === 1) return metric(m, refs[0], outs[0]);
  return tf.tidy(() =>
    metric(m, tf.concat(refs.map((r) => tf.reshape(r, [-1]))), tf.concat(outs.map((o) => tf.reshape(o, [-1])))),
  );
}

/** Worst first; ties in the model's op order. */
export function sortSensitivity(rows: SensitivityRow[], m: Metric, rt: QuantRuntime): SensitivityRow[] {
  const order = new Map([...rt.ops.keys()].map((name, i) => [name, i]));
  const worse = largerIsWorse(m) ? -1 : 1;
  return rows.sort(
    (a, b) => worse * (a.value - b.value) || (order.get(a.op_name) as number) - (order.get(b.op_name) as number),
  );
}

export function runSensitivity(
  model: Module,
  rt: QuantRuntime,
  args: tf.Tensor[],
  opts: SensitivityOptions = {},
): SensitivityRow[] {
  const m = opts.metric ?? "L1";
  const reuse = opts.reuseFloat ?? true;
  const order = new Map([...rt.ops.keys()].map((name, i) => [name, i]));
  const totalFlops = [...rt.ops.values()].reduce((a, o) => a + o.info.flops, 0);
  const points = [...rt.fakeQuantizers()].filter(
    ([, role]) => role === "output" || role === "weight" || role.startsWith("input_"),
  );
  const start = performance.now();
  const row = (op: PreparedOp, role: TapRole, fq: { dtype: { name: string } }, value: number): SensitivityRow => ({
    op_name: op.info.name,
    sensitive_type: role === "weight" ? "weight" : "activation",
    op_type: op.info.type,
    value,
    quant_dtype: fq.dtype.name,
    flops: `${op.info.flops}(${pct(op.info.flops, totalFlops)})`,
  });
  const sortRows = (rows: SensitivityRow[]) => sortSensitivity(rows, m, rt);
  // onnxruntime: a run per point, every other point off, each starting at the last graph cut before its point
  const fast = ortModel(model, rt, args);
  if (fast !== null) {
    let refs: tf.Tensor[] = [];
    const rows: SensitivityRow[] = [];
    try {
      fast.sweep(
        args,
        points.map(([, , fq]) => fq),
        (k, outs) => {
          if (k === "float") {
            refs = outs;
            return;
          }
          const [op, role, fq] = points[k];
          rows.push(row(op, role, fq, errorOf(m, refs, outs)));
          tf.dispose(outs);
          reportProgress(opts.onProgress, {
            task: "sensitivity",
            done: rows.length,
            total: points.length,
            elapsedMs: performance.now() - start,
          });
        },
      );
      return sortRows(rows);
    } finally {
      tf.dispose(refs);
    }
  }
  const cache = new Map<string, tf.Tensor>();
  const record = (op: PreparedOp, role: TapRole, value: tf.Tensor) => {
    if (role === "output" && reuse) cache.set(op.info.name, tf.keep(tf.clone(value)));
  };
  try {
    const refs = withPoints(
      rt,
      FakeQuantState.FLOAT,
      (_op, _role, fq) => (fq.fakeQuantOverride = false),
      () => runModel(model, rt, args, [record]),
    );
    const rows: SensitivityRow[] = [];
    try {
      points.forEach(([op, role, fq], k) => {
        const limit = (order.get(op.info.name) as number) + (role === "output" ? 1 : 0);
        const override = reuse
          ? (_call: unknown, o: PreparedOp) =>
              (order.get(o.info.name) as number) < limit ? tf.clone(cache.get(o.info.name) as tf.Tensor) : undefined
          : null;
        const outs = withPoints(
          rt,
          FakeQuantState.FLOAT,
          (_o, _r, f) => (f.fakeQuantOverride = f === fq),
          () => runModel(model, rt, args, [], override),
        );
        rows.push(row(op, role, fq, errorOf(m, refs, outs)));
        tf.dispose(outs);
        reportProgress(opts.onProgress, {
          task: "sensitivity",
          done: k + 1,
          total: points.length,
          elapsedMs: performance.now() - start,
        });
      });
    } finally {
      tf.dispose(refs);
    }
    return sortRows(rows);
  } finally {
    cache.forEach((t) => t.dispose());
  }
}
