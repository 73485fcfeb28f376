/**
 * onnxruntime as the float oracle for imported graphs, and — when an import disagrees with it —
 * the first node whose output diverges (every node output is added to the graph's outputs and
 * compared with the value quantbook computed for the same name).
 */
import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import * as qb from "../src";
import { onnx } from "onnx-proto";
import * as ort from "onnxruntime-node";
import type { OnnxGraphModule } from "../src/io/onnx/graphModule";

export async function ortRun(file: string, x: tf.Tensor): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(file, { intraOpNumThreads: 1 });
  const out = await session.run({
    [session.inputNames[0]]: new ort.Tensor("float32", x.dataSync() as Float32Array, x.shape),
  });
  return out[session.outputNames[0]].data as Float32Array;
}

export function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num = Math.max(num, Math.abs(a[i] - b[i]));
    den = Math.max(den, Math.abs(b[i]));
  }
  return num / Math.max(den, 1e-12);
}

/** The first node (in graph order) whose float output differs from onnxruntime's by more than `tol` (relative); null if none. */
export async function firstDivergence(
  file: string,
  model: OnnxGraphModule,
  x: tf.Tensor,
  tol = 1e-4,
): Promise<{ node: string; output: string; error: number; compared: number } | null> {
  const proto = onnx.ModelProto.decode(readFileSync(file));
  const graph = proto.graph as onnx.GraphProto;
  const known = new Set(graph.output.map((o) => o.name));
  const names: [string, string][] = [];
  for (const n of graph.node) {
    if (n.opType === "Constant") continue;
    for (const o of n.output ?? []) {
      if (!known.has(o)) graph.output.push(onnx.ValueInfoProto.create({ name: o }));
      names.push([n.name ?? "", o]);
    }
  }
  const session = await ort.InferenceSession.create(onnx.ModelProto.encode(proto).finish(), { intraOpNumThreads: 1 });
  const theirs = await session.run({
    [session.inputNames[0]]: new ort.Tensor("float32", x.dataSync() as Float32Array, x.shape),
  });
  const ours = model.values(x);
  try {
    let compared = 0;
    for (const [node, output] of names) {
      const a = ours.get(output);
      const b = theirs[output];
      if (a === undefined || b === undefined || b.type !== "float32" || a.size !== b.data.length) continue;
      compared++;
      const error = relErr(a.dataSync(), b.data as Float32Array);
      if (error > tol) return { node, output, error, compared };
    }
    return null;
  } finally {
    tf.dispose([...ours.values()]);
  }
}

/** A small ONNX model from nodes and initializers (what paddle2onnx-style or old-opset graphs look like). */
export function model(
  opset: number,
  nodes: onnx.INodeProto[],
  inits: onnx.ITensorProto[],
  input: [string, number[]],
  output: string,
): Uint8Array {
  const vi = (name: string, dims: number[]) => ({
    name,
    type: { tensorType: { elemType: 1, shape: { dim: dims.map((d) => ({ dimValue: d })) } } },
  });
  return onnx.ModelProto.encode({
    irVersion: 6,
    opsetImport: [{ domain: "", version: opset }],
    producerName: "quantbook-test",
    graph: { name: "g", node: nodes, initializer: inits, input: [vi(...input)], output: [{ name: output }] },
  }).finish();
}
export const floats = (name: string, dims: number[], data: number[]): onnx.ITensorProto => ({
  name,
  dims,
  dataType: 1,
  floatData: data,
});
export const int64s = (name: string, data: number[]): onnx.ITensorProto => ({
  name,
  dims: [data.length],
  dataType: 7,
  int64Data: data,
});

/**
 * Writes `bytes` into `dir` (onnxruntime reads the file), imports them, runs `x` through both and
 * asserts the float outputs agree within `tol` (relative to the largest |y|).
 */
export async function importAndCompare(dir: string, name: string, bytes: Uint8Array, x: tf.Tensor, tol: number) {
  const file = path.join(dir, `${name.replace(/\W+/g, "_")}.onnx`);
  writeFileSync(file, bytes);
  const m = await qb.io.loadOnnx(bytes);
  const y = m.forward(x) as unknown as tf.Tensor;
  const want = await ortRun(file, x);
  assert.equal(y.size, want.length, `${name}: shape [${y.shape}], onnxruntime gave ${want.length} values`);
  assert.ok(relErr(y.dataSync(), want) < tol, `${name}: ${relErr(y.dataSync(), want)} vs onnxruntime`);
  return { m, y };
}

/** Runs `fn` with a fresh temporary folder (onnxruntime reads models from files), removed afterwards. */
export async function inTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(path.join(tmpdir(), "qb-onnx-"));
  try {
    await fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
