/**
 * Tensors that belong to one object only (a prepared model's copies of the weights) are freed when
 * that object is garbage-collected: tfjs does not free tensors by itself, so a notebook that
 * re-runs a `prepare` cell would otherwise keep every earlier copy alive. Keep the model, not its
 * tensors: a tensor taken out of such a model stops working once the model is collected.
 */
import type * as tf from "@tensorflow/tfjs";

const registry = new FinalizationRegistry<tf.Tensor[]>((tensors) => {
  for (const t of tensors) if (!t.isDisposed) t.dispose();
});

/** Disposes `tensors` once `owner` is garbage-collected (if they are still alive then). */
export function disposeWithOwner(owner: object, tensors: tf.Tensor[]): void {
  if (tensors.length > 0) registry.register(owner, tensors);
}
