/**
 * Fills a model's parameters and buffers from a seeded integer generator that a few lines of
 * Python reproduce bit for bit (test/fixtures/make_model_goldens.py), so quantbook's model
 * examples can be checked against torchvision's without shipping megabytes of weights.
 *
 * Per tensor: state xorshift32 seeded by FNV-1a of its name and the seed; uniform u in [0, 1) from
 * the top 24 bits. Weights with a fan-in (Linear, Conv) are U(-√(6 / fan_in), √(6 / fan_in));
 * BatchNorm weight 1 + 0.2·(u − ½), bias and running mean 0.2·(u − ½), running var ½ + u; other
 * biases 0.2·(u − ½).
 */
import * as tf from "@tensorflow/tfjs";
import { BatchNorm2d } from "../nn/batchnorm";
import type { Module } from "../nn/module";

function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** `n` uniforms in [0, 1) for tensor `name`. */
export function uniforms(name: string, n: number, seed = 0): Float64Array {
  let x = (fnv1a(name) ^ seed) >>> 0 || 1;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = (x >>> 8) / 16777216;
  }
  return out;
}

/** The values of tensor `name` (field `field` of its module) of `shape`; `batchNorm`: a BatchNorm's. */
export function deterministicValues(
  name: string,
  field: string,
  shape: number[],
  batchNorm: boolean,
  seed = 0,
): Float32Array {
  const n = shape.reduce((a, b) => a * b, 1);
  const u = uniforms(name, n, seed);
  if (field === "running_var") return Float32Array.from(u, (v) => 0.5 + v);
  if (field === "running_mean" || field === "bias") return Float32Array.from(u, (v) => 0.2 * (v - 0.5));
  if (batchNorm) return Float32Array.from(u, (v) => 1 + 0.2 * (v - 0.5));
  const fanIn = shape.slice(1).reduce((a, b) => a * b, 1);
  const bound = Math.sqrt(6 / fanIn);
  return Float32Array.from(u, (v) => (2 * v - 1) * bound);
}

/** Sets every float parameter and buffer of the model to its deterministic values. */
export function deterministicInit<T extends Module>(model: T, seed = 0): T {
  for (const [path, m] of model.namedModules()) {
    const batchNorm = m instanceof BatchNorm2d;
    for (const [field, t] of Object.entries(m)) {
      if (!(t instanceof tf.Variable) || t.dtype !== "float32") continue;
      const name = path === "" ? field : `${path}.${field}`;
      tf.tidy(() => t.assign(tf.tensor(deterministicValues(name, field, t.shape, batchNorm, seed), t.shape)));
    }
  }
  return model;
}
