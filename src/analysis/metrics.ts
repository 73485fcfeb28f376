/** Distances between a reference (float) output and a quantized one. */
import * as tf from "@tensorflow/tfjs";
import { errors } from "../messages";

export type Metric = "L1" | "MSE" | "Cosine" | "KL" | "SQNR" | "Top1";
export const METRICS: Metric[] = ["L1", "MSE", "Cosine", "KL", "SQNR", "Top1"];

/** True when a larger value means a worse match (L1, MSE, KL); false for Cosine, SQNR and Top1. */
export function largerIsWorse(m: Metric): boolean {
  return m === "L1" || m === "MSE" || m === "KL";
}

export function checkMetric(m: string, where: string): Metric {
  if (!METRICS.includes(m as Metric))
    throw errors.invalidArgument(`${where}`, `unknown metric '${m}'`, `expected one of ${METRICS.join(", ")}`);
  return m as Metric;
}

/**
 * L1 = mean |a - b|; MSE = mean (a - b)²; Cosine = cosine similarity of the flattened tensors;
 * KL = KL(softmax(ref) ‖ softmax(q)) over the last axis, averaged; SQNR = 10·log10(Σref² / Σ(ref - q)²) dB;
 * Top1 = the share of rows (all but the last axis) whose largest entry along the last axis is at the
 * same index in both: a classifier's top-1 agreement with float.
 */
export function metric(m: Metric, ref: tf.Tensor, q: tf.Tensor): number {
  return tf.tidy(() => {
    const a = tf.reshape(ref, [-1]);
    const b = tf.reshape(q, [-1]);
    switch (m) {
      case "L1":
        return tf.mean(tf.abs(tf.sub(a, b))).dataSync()[0];
      case "MSE":
        return tf.mean(tf.squaredDifference(a, b)).dataSync()[0];
      case "Cosine": {
        const den = tf.mul(tf.norm(a), tf.norm(b)).dataSync()[0];
        return den === 0 ? 1 : tf.sum(tf.mul(a, b)).dataSync()[0] / den;
      }
      case "KL": {
        const last = ref.shape[ref.rank - 1] ?? 1;
        const p = tf.softmax(tf.reshape(ref, [-1, last]));
        const lq = tf.logSoftmax(tf.reshape(q, [-1, last]));
        const lp = tf.log(tf.add(p, 1e-12));
        return tf.mean(tf.sum(tf.mul(p, tf.sub(lp, lq)), -1)).dataSync()[0];
      }
      case "Top1": {
        const last = ref.shape[ref.rank - 1] ?? 1;
        const same = tf.equal(tf.argMax(tf.reshape(ref, [-1, last]), 1), tf.argMax(tf.reshape(q, [-1, last]), 1));
        return tf.mean(tf.cast(same, "float32")).dataSync()[0];
      }
      case "SQNR": {
        const noise = tf.sum(tf.squaredDifference(a, b)).dataSync()[0];
        const signal = tf.sum(tf.square(a)).dataSync()[0];
        return noise === 0 ? Infinity : 10 * Math.log10(signal / noise);
      }
    }
  });
}
