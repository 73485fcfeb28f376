import * as tf from "@tensorflow/tfjs";

let seed = 0;

/** Seeds parameter initialisation so that models built after it are reproducible. */
export function manualSeed(s: number): void {
  seed = s;
}

/** U(-bound, bound), as PyTorch initialises Linear layers; deterministic under manualSeed. */
export function uniformParameter(shape: number[], bound: number): tf.Variable {
  return tf.tidy(() => tf.variable(tf.randomUniform(shape, -bound, bound, "float32", seed++)));
}

export function constantParameter(shape: number[], value: number): tf.Variable {
  return tf.tidy(() => tf.variable(tf.fill(shape, value)));
}
