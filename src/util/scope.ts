import * as tf from "@tensorflow/tfjs";

/** Like tf.tidy for functions that return plain values: every tensor created inside is disposed. */
export function withScope<T>(fn: () => T): T {
  tf.engine().startScope();
  try {
    return fn();
  } finally {
    tf.engine().endScope();
  }
}
