/**
 * QuantizeLinear → DequantizeLinear pairs written into a user's own ONNX file: the graph, its node
 * names and its initializers stay as they were; each quantization point becomes a Q/DQ pair on the
 * tensor it quantizes. An output point sits on a node's output (every reader sees the dequantized
 * value, graph outputs keep their names), an input point on one node's input edge, a weight point
 * on the node's weight initializer (per channel where the scale is).
 *
 * int8 pairs are standard ONNX (opset 10 and later; per channel from opset 13); int16 pairs use
 * com.microsoft's QuantizeLinear, which onnxruntime runs. A per-channel point in a file below opset
 * 13 has no form onnxruntime accepts (its QDQ optimizer writes a bias DequantizeLinear with an
 * axis the file's opset lacks), so it is reported, not written.
 */
import { onnx } from "onnx-proto";
import { tensorProto } from "../../ops/lowering";
import { tensorValue } from "./proto";

export type QdqWhere =
  | { kind: "output"; node: string }
  | { kind: "input"; node: string; input: number }
  | { kind: "graphInput"; name: string }
  | { kind: "weight"; node: string; data: Float32Array; shape: number[] };

export interface QdqPoint {
  where: QdqWhere;
  /** quantbook's name of the point (for messages). */
  name: string;
  scale: number[];
  elem: "int8" | "int16";
  /** Channel axis of a per-channel scale (of quantbook's tensor; weights are mapped to the file's layout). */
  axis?: number | undefined;
}

const toNumber = (v: number | { toNumber(): number } | null | undefined): number =>
  v === null || v === undefined ? 0 : typeof v === "number" ? v : v.toNumber();

/** The file with the points' Q/DQ pairs; `skipped` names each point that has no place in the file, and why. */
export function insertQdq(
  bytes: Uint8Array,
  file: string,
  points: QdqPoint[],
): { bytes: Uint8Array; placed: number; skipped: string[] } {
  const model = onnx.ModelProto.decode(bytes);
  const graph = model.graph as onnx.GraphProto;
  const nodes = graph.node ?? [];
  // where each node sits (the pairs go before or after it): one lookup per point, not a scan
  const position = new Map(nodes.map((n, i) => [n, i]));
  const opset = Math.max(
    0,
    ...(model.opsetImport ?? []).filter((o) => !o.domain || o.domain === "ai.onnx").map((o) => toNumber(o.version)),
  );
  const byName = new Map<string, onnx.INodeProto[]>();
  for (const n of nodes) byName.set(n.name ?? "", [...(byName.get(n.name ?? "") ?? []), n]);
  const initializers = new Map((graph.initializer ?? []).map((t) => [t.name ?? "", t]));
  const graphInputs = new Set((graph.input ?? []).map((v) => v.name ?? ""));
  const taken = new Set<string>([
    ...nodes.flatMap((n) => [...(n.input ?? []), ...(n.output ?? [])]),
    ...initializers.keys(),
    ...graphInputs,
  ]);
  const fresh = (base: string) => {
    let name = base;
    for (let k = 1; taken.has(name); k++) name = `${base}_${k}`;
    taken.add(name);
    return name;
  };
  /** Pairs to put before the node at index (a producer's pairs go right after it). */
  const before = new Map<number, onnx.INodeProto[]>();
  const at = (index: number, ...ns: onnx.INodeProto[]) => before.set(index, [...(before.get(index) ?? []), ...ns]);
  let microsoft = false;
  const skipped: string[] = [];
  let placed = 0;

  const nodeOf = (p: QdqPoint, name: string): onnx.INodeProto | null => {
    const found = byName.get(name) ?? [];
    if (name === "" || found.length !== 1) {
      skipped.push(
        `${p.name}: ${name === "" ? "its node has no name" : found.length === 0 ? `node '${name}' is not in the file's main graph` : `node name '${name}' is not unique`}`,
      );
      return null;
    }
    return found[0];
  };
  /** Q → DQ of `x`, the dequantized value named `y`. */
  const pair = (p: QdqPoint, x: string, y: string, axis: number | undefined): onnx.INodeProto[] => {
    const perChannel = axis !== undefined && p.scale.length > 1;
    const ms = p.elem === "int16" || opset < 10;
    microsoft ||= ms;
    const base = x.replace(/[^A-Za-z0-9_./:-]/g, "_");
    const s = fresh(`${base}_scale`);
    const zp = fresh(`${base}_zero_point`);
    graph.initializer.push(
      tensorProto(
        s,
        Float32Array.from(perChannel ? p.scale : [p.scale[0]]),
        perChannel ? [p.scale.length] : [],
        "float32",
      ),
    );
    graph.initializer.push(
      tensorProto(
        zp,
        new Array<number>(perChannel ? p.scale.length : 1).fill(0),
        perChannel ? [p.scale.length] : [],
        p.elem,
      ),
    );
    const q = fresh(`${base}_quantized`);
    const attribute = perChannel ? [{ name: "axis", type: onnx.AttributeProto.AttributeType.INT, i: axis }] : [];
    const domain = ms ? "com.microsoft" : "";
    placed++;
    return [
      {
        name: fresh(`${base}_QuantizeLinear`),
        opType: "QuantizeLinear",
        domain,
        input: [x, s, zp],
        output: [q],
        attribute,
      },
      {
        name: fresh(`${base}_DequantizeLinear`),
        opType: "DequantizeLinear",
        domain,
        input: [q, s, zp],
        output: [y],
        attribute,
      },
    ];
  };

  for (const p of points) {
    const w = p.where;
    if (p.axis !== undefined && p.scale.length > 1 && opset < 13) {
      skipped.push(
        `${p.name}: a per-channel scale needs opset 13 and the file is opset ${opset} (re-export it with opset_version=13)`,
      );
      continue;
    }
    if (w.kind === "graphInput") {
      if (!graphInputs.has(w.name)) {
        skipped.push(`${p.name}: the file has no graph input '${w.name}'`);
        continue;
      }
      const y = fresh(`${w.name}_dequantized`);
      for (const n of nodes) n.input = (n.input ?? []).map((v) => (v === w.name ? y : v));
      at(0, ...pair(p, w.name, y, p.axis));
    } else if (w.kind === "output") {
      const n = nodeOf(p, w.node);
      if (n === null) continue;
      const t = n.output?.[0] ?? "";
      // the producer writes the float value under a new name; the pair writes the old one, so readers and graph outputs are unchanged
      const f = fresh(`${t}_float`);
      (n.output as string[])[0] = f;
      at((position.get(n) as number) + 1, ...pair(p, f, t, p.axis));
    } else if (w.kind === "input") {
      const n = nodeOf(p, w.node);
      if (n === null) continue;
      const x = n.input?.[w.input];
      if (!x) {
        skipped.push(`${p.name}: node '${w.node}' has no input ${w.input}`);
        continue;
      }
      const y = fresh(`${x}_requantized`);
      (n.input as string[])[w.input] = y;
      at(position.get(n) as number, ...pair(p, x, y, p.axis));
    } else {
      const n = nodeOf(p, w.node);
      if (n === null) continue;
      // the node's initializer input of quantbook's weight shape — or, 2-D, its transpose (Gemm without transB, MatMul store [in, out])
      const sameDims = (a: number[], b: number[]) => a.length === b.length && a.every((d, i) => d === b[i]);
      const candidates = (n.input ?? []).flatMap((name, index) => {
        const init = initializers.get(name);
        return init === undefined ? [] : [{ name, index, value: tensorValue(init, file) }];
      });
      const match =
        candidates.find((c) => sameDims(c.value.dims, w.shape)) ??
        candidates.find((c) => w.shape.length === 2 && sameDims(c.value.dims, [w.shape[1], w.shape[0]]));
      if (match === undefined) {
        skipped.push(`${p.name}: node '${w.node}' has no initializer of quantbook's weight shape [${w.shape}]`);
        continue;
      }
      const x = match.name;
      const v = match.value;
      const data = v.data as ArrayLike<number>;
      const same = sameDims(v.dims, w.shape);
      let worst = 0;
      let peak = 0;
      for (let i = 0; i < w.data.length; i++) {
        const j = same ? i : (i % w.shape[1]) * w.shape[0] + Math.floor(i / w.shape[1]);
        worst = Math.max(worst, Math.abs(w.data[i] - data[j]));
        peak = Math.max(peak, Math.abs(w.data[i]));
      }
      if (worst > 1e-5 * Math.max(peak, 1e-30)) {
        skipped.push(
          `${p.name}: the file's weight of '${w.node}' differs from quantbook's (a BatchNorm folded at import?)`,
        );
        continue;
      }
      const axis = p.axis === undefined ? undefined : same ? p.axis : 1 - p.axis;
      const y = fresh(`${x}_dequantized`);
      (n.input as string[])[match.index] = y;
      at(position.get(n) as number, ...pair(p, x, y, axis));
    }
  }
  const out: onnx.INodeProto[] = [];
  nodes.forEach((n, i) => out.push(...(before.get(i) ?? []), n));
  out.push(...(before.get(nodes.length) ?? []));
  graph.node = out as onnx.NodeProto[];
  if (microsoft && !(model.opsetImport ?? []).some((o) => o.domain === "com.microsoft"))
    model.opsetImport.push(onnx.OperatorSetIdProto.create({ domain: "com.microsoft", version: 1 }));
  return { bytes: onnx.ModelProto.encode(model).finish(), placed, skipped };
}
