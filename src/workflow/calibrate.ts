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
export async function calibrate(model: Module, batches: Batches, opts: CalibrateOptions = {}): Promise<{ batches: number; elapsedMs: number }> {
  await ensureBackend();
  const rt = runtimeOf(model, "calibrate");
  if (rt.state !== FakeQuantState.CALIBRATION) {
    throw errors.wrongState("calibrate", `${rt.state} state`, "call qb.setFakeQuantize(model, qb.FakeQuantState.CALIBRATION) first");
  }
  if (
    batches === null ||
    batches === undefined ||
    (typeof (batches as Iterable<Batch>)[Symbol.iterator] !== "function" && typeof (batches as AsyncIterable<Batch>)[Symbol.asyncIterator] !== "function")
  ) {
    throw errors.invalidArgument("calibrate", "batches must be an array (or iterable) of input tensors", "pass e.g. [exampleInput]");
  }
  const total = Array.isArray(batches) ? batches.length : undefined;
  const start = performance.now();
  const fqs = [...rt.fakeQuantizers()].map(([, , fq]) => fq);
  let done = 0;
  const running = beginOperation("qb.calibrate");
  rt.busy = running.op;
  try {
    for await (const batch of batches as AsyncIterable<Batch>) {
      const saved = fqs.map((fq) => fq.snapshot());
      try {
        const args = Array.isArray(batch) ? batch : [batch];
        // onnxruntime when the model runs there; a batch with non-finite ranges goes through tfjs's observers
        const fast = ortModel(model, rt, args, true);
        if (fast === null || !fast.observe(args)) tf.dispose((model.forward as (...a: tf.Tensor[]) => tf.TensorContainer)(...args));
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
    rt.busy = null;
    running.end();
  }
  return { batches: done, elapsedMs: performance.now() - start };
}
