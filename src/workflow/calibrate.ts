import * as tf from "@tensorflow/tfjs";
import type { Module } from "../nn/module";
import { FakeQuantState } from "../quant/state";
import { runtimeOf } from "./quantRuntime";

export interface Progress {
  /** What is running, e.g. "calibrate". */
  task: string;
  done: number;
  /** Total when known (arrays), else undefined. */
  total?: number;
  elapsedMs: number;
}

export type ProgressCallback = (p: Progress) => void;

export type Batch = tf.Tensor | tf.Tensor[];
export type Batches = Iterable<Batch> | AsyncIterable<Batch>;

export interface CalibrateOptions {
  onProgress?: ProgressCallback;
}

/** Default progress: a line on a terminal's stderr (notebooks get the kernel's progress bar). */
export function terminalProgress(p: Progress): void {
  if (!process.stderr.isTTY) return;
  const of = p.total === undefined ? "" : `/${p.total}`;
  process.stderr.write(`\r${p.task}: ${p.done}${of} batches, ${(p.elapsedMs / 1000).toFixed(1)} s`);
  if (p.total !== undefined && p.done === p.total) process.stderr.write("\n");
}

let defaultProgress: ProgressCallback = terminalProgress;

/** Replaces the progress display used when a call passes no onProgress (the kernel sets one). */
export function setDefaultProgress(cb: ProgressCallback): void {
  defaultProgress = cb;
}

export function reportProgress(cb: ProgressCallback | undefined, p: Progress): void {
  (cb ?? defaultProgress)(p);
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
  const rt = runtimeOf(model, "calibrate");
  if (rt.state !== FakeQuantState.CALIBRATION) {
    throw new Error(`calibrate: the model is in ${rt.state} state; call qb.setFakeQuantize(model, qb.FakeQuantState.CALIBRATION) first`);
  }
  if (batches === null || batches === undefined || (typeof (batches as Iterable<Batch>)[Symbol.iterator] !== "function" && typeof (batches as AsyncIterable<Batch>)[Symbol.asyncIterator] !== "function")) {
    throw new Error("calibrate: batches must be an array (or iterable) of input tensors, e.g. [exampleInput]");
  }
  const total = Array.isArray(batches) ? batches.length : undefined;
  const start = performance.now();
  const fqs = [...rt.fakeQuantizers()].map(([, , fq]) => fq);
  let done = 0;
  for await (const batch of batches as AsyncIterable<Batch>) {
    const saved = fqs.map((fq) => fq.snapshot());
    try {
      const args = Array.isArray(batch) ? batch : [batch];
      tf.dispose((model.forward as (...a: tf.Tensor[]) => tf.TensorContainer)(...args));
    } catch (e) {
      fqs.forEach((fq, i) => fq.restore(saved[i]));
      const msg = e instanceof Error ? e.message : String(e);
      throw new Error(`calibrate: batch ${done} failed, observers are as before it: ${msg}`);
    }
    done++;
    reportProgress(opts.onProgress, { task: "calibrate", done, total, elapsedMs: performance.now() - start });
    await new Promise((r) => setImmediate(r));
  }
  return { batches: done, elapsedMs: performance.now() - start };
}
