/**
 * onnxruntime as the float oracle for imported graphs, and — when an import disagrees with it —
 * the first node whose output diverges (every node output is added to the graph's outputs and
 * compared with the value quantbook computed for the same name).
 */
import * as tf from "@tensorflow/tfjs";
import { readFileSync } from "node:fs";
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
