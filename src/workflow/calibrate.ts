import * as tf from "@tensorflow/tfjs";
import type { Module } from "../nn/module";
import { FakeQuantState } from "../quant/state";
import { reportProgress, type ProgressCallback } from "../util/progress";
import { InterruptedError } from "../util/interrupt";
import { beginOperation } from "../util/operations";
import { runtimeOf } from "./quantRuntime";
import { ortModel } from "./engine";
import { errors } from "../messages";
import { ensureBackend } from "../backend";

export type Batch = tf.Tensor | tf.Tensor[];
export type Batches = Iterable<Batch> | AsyncIterable<Batch>;

export interface CalibrateOptions {
  onProgress?: ProgressCallback;
  /**
   * Recurrent state carried from batch to batch, as the frames of a stream: `{ 1: 1, 2: 2 }` feeds
   * output 1 of each batch as input 1 of the next (an LSTM's h and c); the first batch's own
   * inputs start the stream. Outputs count in the order the forward returns them (flattened).
   */
  carry?: Record<number, number>;
}

/** The tensors of a forward's result, in order. */
function flat(v: unknown, out: tf.Tensor[] = []): tf.Tensor[] {
  if (v instanceof tf.Tensor) out.push(v);
  else if (Array.isArray(v)) v.forEach((x) => flat(x, out));
  else if (v !== null && typeof v === "object") Object.values(v).forEach((x) => flat(x, out));
  return out;
}

/**
 * (2) Runs batches through a prepared model in CALIBRATION state so its observers learn ranges.
 * A batch that fails (NaN/Inf, wrong shape) leaves every observer as it was before that batch
 * and raises an error naming the batch and the op.
 *
 * ```ts
 * qb.setFakeQuantize(calib, qb.FakeQuantState.CALIBRATION);
 * await qb.calibrate(calib, batches, { onProgress: (p) => console.log(p.done) });
 * ```
 */
export async function calibrate(
  model: Module,
  batches: Batches,
  opts: CalibrateOptions = {},
): Promise<{ batches: number; elapsedMs: number }> {
  const rt = runtimeOf(model, "calibrate");
  if (rt.state !== FakeQuantState.CALIBRATION) {
    throw errors.needsCalibrationState("calibrate", rt.state);
  }
  if (
    batches === null ||
    batches === undefined ||
    (typeof (batches as Iterable<Batch>)[Symbol.iterator] !== "function" &&
      typeof (batches as AsyncIterable<Batch>)[Symbol.asyncIterator] !== "function")
  ) {
    throw errors.invalidArgument(
      "calibrate",
      "batches must be an array (or iterable) of input tensors",
      "pass e.g. [exampleInput]",
    );
  }
  const sized = (batches as { length?: unknown }).length;
  const total = typeof sized === "number" ? sized : undefined;
  const start = performance.now();
  const fqs = [...rt.fakeQuantizers()].map(([, , fq]) => fq);
  const carry = Object.entries(opts.carry ?? {}).map(([i, o]) => [Number(i), Number(o)] as const);
  for (const [i, o] of carry) {
    if (!Number.isInteger(i) || !Number.isInteger(o) || i < 0 || o < 0 || i >= rt.graph.inputShapes.length) {
      throw errors.invalidArgument(
        "calibrate",
        `carry { ${i}: ${o} } is not an input index → output index of this model`,
        `inputs are 0..${rt.graph.inputShapes.length - 1}`,
      );
    }
  }
  /** The carried outputs of the last batch, by input index. */
  let carried = new Map<number, tf.Tensor>();
  let done = 0;
  const running = beginOperation("qb.calibrate");
  rt.busy = running.op;
  try {
    // (after the model is marked busy: a call in the same cell that does not await sees it at once)
    await ensureBackend();
    for await (const batch of batches as AsyncIterable<Batch>) {
      const saved = fqs.map((fq) => fq.snapshot());
      try {
        const given = Array.isArray(batch) ? batch : [batch];
        const args = given.map((t, i) => carried.get(i) ?? t);
        // onnxruntime when the model runs there; a batch with non-finite ranges goes through tfjs's observers
        const fast = ortModel(model, rt, args, true);
        const outputs: tf.Tensor[][] = [];
        if (fast === null || !fast.observe(args, carry.length > 0 ? outputs : undefined)) {
          const out = (model.forward as (...a: tf.Tensor[]) => tf.TensorContainer)(...args);
          outputs[0] = flat(out);
        }
        if (carry.length > 0) {
          const next = new Map<number, tf.Tensor>();
          for (const [i, o] of carry) {
            const t = outputs[0]?.[o];
            if (t === undefined)
              throw errors.invalidArgument(
                "calibrate",
                `carry { ${i}: ${o} }: the model returns ${outputs[0]?.length ?? 0} outputs`,
                "name an output index it returns",
              );
            next.set(i, tf.keep(tf.clone(t)));
          }
          tf.dispose(outputs[0]);
          tf.dispose([...carried.values()]);
          carried = next;
        } else tf.dispose(outputs[0]);
      } catch (e) {
        fqs.forEach((fq, i) => fq.restore(saved[i]));
        if (e instanceof InterruptedError) throw e;
        throw errors.batchFailed("calibrate", done, e);
      }
      done++;
      // a macrotask between batches lets an interrupt (or any other event) in
      await new Promise((r) => setImmediate(r));
      reportProgress(opts.onProgress, { task: "calibrate", done, total, elapsedMs: performance.now() - start });
    }
  } finally {
    tf.dispose([...carried.values()]);
    rt.busy = null;
    running.end();
  }
  return { batches: done, elapsedMs: performance.now() - start };
}
