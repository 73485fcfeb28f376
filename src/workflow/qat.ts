import * as tf from "@tensorflow/tfjs";
import type { Module } from "../nn/module";
import { FakeQuantState } from "../quant/state";
import { reportProgress, type ProgressCallback } from "../util/progress";
import { runtimeOf } from "./quantRuntime";
import { errors } from "../messages";

export type LossFn = (prediction: tf.Tensor, target: tf.Tensor) => tf.Scalar;

export const mseLoss: LossFn = (p, t) => tf.losses.meanSquaredError(t, p) as tf.Scalar;

function checkQat(model: Module, caller: string): void {
  const rt = runtimeOf(model, caller);
  if (rt.state !== FakeQuantState.QAT) {
    throw errors.wrongState(
      caller,
      `${rt.state} state`,
      "call model.train() and qb.setFakeQuantize(model, qb.FakeQuantState.QAT) first",
    );
  }
}

/**
 * One QAT step: forward with fake quantization (straight-through gradients), loss, optimizer
 * update of the model's parameters. Returns the loss.
 *
 * ```ts
 * const opt = tf.train.adam(1e-4);
 * const loss = qb.qat.step(qatModel, opt, x, target);
 * ```
 */
export function qatStep(
  model: Module,
  optimizer: tf.Optimizer,
  input: tf.Tensor | tf.Tensor[],
  target: tf.Tensor,
  lossFn: LossFn = mseLoss,
): number {
  checkQat(model, "qatStep");
  const args = Array.isArray(input) ? input : [input];
  const vars = model.parameters().filter((v) => v.trainable);
  const loss = optimizer.minimize(
    () => lossFn((model.forward as (...a: tf.Tensor[]) => tf.Tensor)(...args), target),
    true,
    vars,
  );
  if (loss === null)
    throw errors.invalidArgument(
      "qatStep",
      "the optimizer returned no loss",
      "return the loss tensor from the loss function",
    );
  const value = loss.dataSync()[0];
  loss.dispose();
  return value;
}

/** Runs `epochs` passes of QAT over (input, target) pairs; returns the mean loss per epoch. */
export async function qat(
  model: Module,
  optimizer: tf.Optimizer,
  data: [tf.Tensor | tf.Tensor[], tf.Tensor][],
  opts: { epochs?: number; lossFn?: LossFn; onProgress?: ProgressCallback } = {},
): Promise<number[]> {
  checkQat(model, "qat");
  const epochs = opts.epochs ?? 1;
  const start = performance.now();
  const losses: number[] = [];
  for (let e = 0; e < epochs; e++) {
    let sum = 0;
    for (const [x, y] of data) sum += qatStep(model, optimizer, x, y, opts.lossFn);
    losses.push(sum / Math.max(data.length, 1));
    reportProgress(opts.onProgress, { task: "qat", done: e + 1, total: epochs, elapsedMs: performance.now() - start });
    await new Promise((r) => setImmediate(r));
  }
  return losses;
}
