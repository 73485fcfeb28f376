/**
 * Reading ONNX files: the protobuf (onnx-proto, ONNX 1.10 schema), tensors from initializers and
 * Constant nodes (typed fields or `raw_data`, copied out of the file buffer — most are unaligned —
 * or external data files), attributes as plain values.
 */
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { onnx } from "onnx-proto";
import { errors } from "../../messages";
import { sniffFormat } from "../sniff";

/** A constant: values as numbers (float16 widened, int64 narrowed), its dims and ONNX element type. */
export interface ConstValue {
  data: Float32Array | Int32Array | Uint8Array;
  dims: number[];
  /** "float32" | "int32" (every ONNX integer type) | "bool". */
  dtype: "float32" | "int32" | "bool";
}

export type AttrValue = number | string | number[] | string[] | ConstValue | OnnxSubgraph | null;

/** A graph attribute (If's branches, Loop's body): its nodes, its own constants and what it returns. */
export interface OnnxSubgraph {
  kind: "graph";
  nodes: OnnxNode[];
  initializers: Map<string, ConstValue>;
  outputs: string[];
}

export function isSubgraph(v: AttrValue | undefined): v is OnnxSubgraph {
  return v !== null && typeof v === "object" && !Array.isArray(v) && (v as OnnxSubgraph).kind === "graph";
}

export interface OnnxNode {
  name: string;
  opType: string;
  domain: string;
  inputs: string[];
  outputs: string[];
  attrs: Record<string, AttrValue>;
}

export interface OnnxGraph {
  file: string;
  opset: number;
  producer: string;
  nodes: OnnxNode[];
  initializers: Map<string, ConstValue>;
  /** Graph inputs that are not initializers: name and dims (a string or -1 for a dynamic dim). */
  inputs: { name: string; dims: (number | string)[]; dtype?: ConstValue["dtype"] }[];
  outputs: string[];
}

const T = onnx.TensorProto.DataType;

const toNumber = (v: number | { toNumber(): number }): number => (typeof v === "number" ? v : v.toNumber());

function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * 2 ** -14 * (f / 1024);
  if (e === 31) return f ? NaN : s * Infinity;
  return s * 2 ** (e - 15) * (1 + f / 1024);
}

/** The bytes of a tensor's raw data, from the file or an external data file. */
function rawBytes(t: onnx.ITensorProto, file: string): Uint8Array | null {
  if (t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL) {
    const kv = new Map((t.externalData ?? []).map((e) => [e.key ?? "", e.value ?? ""]));
    const location = kv.get("location");
    if (!location) throw errors.corruptData(`tensor '${t.name}' is stored externally without a location`);
    const where = path.join(path.dirname(file), location);
    let buf: Buffer;
    try {
      buf = readFileSync(where);
    } catch (e) {
      throw errors.corruptData(
        `tensor '${t.name}': cannot read its external data file ${where}: ${(e as Error).message}`,
        e,
      );
    }
    const offset = Number(kv.get("offset") ?? 0);
    const length = kv.has("length") ? Number(kv.get("length")) : buf.length - offset;
    if (offset + length > buf.length)
      throw errors.corruptData(`tensor '${t.name}': external data ${where} is shorter than offset + length`);
    return new Uint8Array(buf.subarray(offset, offset + length));
  }
  return t.rawData && t.rawData.length > 0 ? t.rawData : null;
}

/** A TensorProto as a ConstValue (copies; nothing points into the file buffer). */
export function tensorValue(t: onnx.ITensorProto, file: string): ConstValue {
  const dims = (t.dims ?? []).map(toNumber);
  const n = dims.reduce((a, b) => a * b, 1);
  const raw = rawBytes(t, file);
  const dt = t.dataType ?? T.UNDEFINED;
  // copy the raw bytes to an aligned buffer first
  const view = raw ? new DataView(Uint8Array.from(raw).buffer) : null;
  const need = (bytes: number) => {
    if (view && view.byteLength < n * bytes)
      throw errors.corruptData(
        `tensor '${t.name}' has ${view.byteLength} bytes of data for ${n} elements of ${bytes} bytes (the file is truncated?)`,
      );
  };
  const fromList = (list: ArrayLike<number | { toNumber(): number }> | null | undefined, what: string): number[] => {
    const xs = Array.from(list ?? [], (v) => toNumber(v as number));
    if (xs.length !== n)
      throw errors.corruptData(`tensor '${t.name}' has ${xs.length} ${what} values for ${n} elements`);
    return xs;
  };
  switch (dt) {
    case T.FLOAT: {
      need(4);
      return {
        dims,
        dtype: "float32",
        data: view
          ? Float32Array.from({ length: n }, (_, i) => view.getFloat32(4 * i, true))
          : Float32Array.from(fromList(t.floatData, "float")),
      };
    }
    case T.DOUBLE:
      need(8);
      return {
        dims,
        dtype: "float32",
        data: view
          ? Float32Array.from({ length: n }, (_, i) => view.getFloat64(8 * i, true))
          : Float32Array.from(fromList(t.doubleData, "double")),
      };
    case T.FLOAT16:
      need(2);
      return {
        dims,
        dtype: "float32",
        data: Float32Array.from(
          view ? Array.from({ length: n }, (_, i) => view.getUint16(2 * i, true)) : fromList(t.int32Data, "float16"),
          halfToFloat,
        ),
      };
    case T.INT64:
    case T.UINT64: {
      need(8);
      const xs = view
        ? Array.from({ length: n }, (_, i) => Number(view.getBigInt64(8 * i, true)))
        : fromList(dt === T.INT64 ? t.int64Data : t.uint64Data, "int64");
      // int64 holds shapes and indices; clamp the "to the end" sentinels into int32
      return { dims, dtype: "int32", data: Int32Array.from(xs, (v) => Math.max(-2147483648, Math.min(2147483647, v))) };
    }
    case T.INT32:
    case T.INT16:
    case T.INT8:
    case T.UINT16:
    case T.UINT8: {
      const size = dt === T.INT32 ? 4 : dt === T.INT16 || dt === T.UINT16 ? 2 : 1;
      need(size);
      const read = (i: number) =>
        view === null
          ? 0
          : size === 4
            ? view.getInt32(4 * i, true)
            : size === 2
              ? dt === T.INT16
                ? view.getInt16(2 * i, true)
                : view.getUint16(2 * i, true)
              : dt === T.INT8
                ? view.getInt8(i)
                : view.getUint8(i);
      return {
        dims,
        dtype: "int32",
        data: view ? Int32Array.from({ length: n }, (_, i) => read(i)) : Int32Array.from(fromList(t.int32Data, "int")),
      };
    }
    case T.BOOL:
      need(1);
      return {
        dims,
        dtype: "bool",
        data: view
          ? Uint8Array.from({ length: n }, (_, i) => (view.getUint8(i) ? 1 : 0))
          : Uint8Array.from(fromList(t.int32Data, "bool")),
      };
    default:
      throw errors.corruptData(
        `tensor '${t.name}' has ONNX element type ${onnx.TensorProto.DataType[dt] ?? dt}, which quantbook does not read (float32, float16, double, int8..int64, uint8, bool)`,
      );
  }
}

function attrValue(a: onnx.IAttributeProto, file: string): AttrValue {
  const A = onnx.AttributeProto.AttributeType;
  switch (a.type) {
    case A.FLOAT:
      return a.f ?? 0;
    case A.INT:
      return toNumber(a.i ?? 0);
    case A.STRING:
      return Buffer.from(a.s ?? []).toString();
    case A.FLOATS:
      return a.floats ?? [];
    case A.INTS:
      return (a.ints ?? []).map(toNumber);
    case A.STRINGS:
      return (a.strings ?? []).map((s) => Buffer.from(s).toString());
    case A.TENSOR:
      return a.t ? tensorValue(a.t, file) : null;
    case A.GRAPH:
      return a.g ? subgraph(a.g, file) : null;
    default:
      return null; // sparse tensors and lists of graphs: not used by the ops quantbook imports
  }
}

/** quantbook's dtype for an ONNX element type: float32 for every float, bool, int32 for every integer. */
function elemDtype(t: number): ConstValue["dtype"] {
  if (t === T.FLOAT || t === T.FLOAT16 || t === T.DOUBLE || t === T.BFLOAT16) return "float32";
  return t === T.BOOL ? "bool" : "int32";
}

/** A graph's nodes and initializers (the top graph's, or a subgraph's). */
function subgraph(graph: onnx.IGraphProto, file: string): OnnxSubgraph {
  const initializers = new Map<string, ConstValue>();
  for (const t of graph.initializer ?? []) initializers.set(t.name ?? "", tensorValue(t, file));
  const nodes: OnnxNode[] = (graph.node ?? []).map((n, i) => ({
    name: n.name || `${n.opType}_${i}`,
    opType: n.opType ?? "",
    domain: n.domain ?? "",
    inputs: n.input ?? [],
    outputs: n.output ?? [],
    attrs: Object.fromEntries((n.attribute ?? []).map((a) => [a.name ?? "", attrValue(a, file)])),
  }));
  return { kind: "graph", nodes, initializers, outputs: (graph.output ?? []).map((o) => o.name ?? "") };
}

/** Decodes an .onnx file (or its bytes) into nodes, constants and the graph's inputs and outputs. */
export function readOnnx(bytes: Uint8Array, file: string): OnnxGraph {
  // another kind of file: say which, and what takes it
  const notOnnx = (cause?: unknown) => {
    const known = sniffFormat(bytes);
    return known === null
      ? null
      : errors.badFile("loadOnnx", file, `is ${known.format}, not an ONNX model; ${known.advice}`, cause);
  };
  let model: onnx.ModelProto;
  try {
    model = onnx.ModelProto.decode(bytes);
  } catch (e) {
    throw (
      notOnnx(e) ??
      errors.badFile(
        "loadOnnx",
        file,
        `not a readable ONNX model (${(e as Error).message}); check that the file is complete and was written by torch.onnx.export or paddle2onnx`,
        e,
      )
    );
  }
  const graph = model.graph;
  if (!graph || (graph.node ?? []).length === 0) {
    throw (
      notOnnx() ?? errors.badFile("loadOnnx", file, "has no graph nodes — it is not an ONNX model (or an empty one)")
    );
  }
  const opset = Math.max(
    0,
    ...(model.opsetImport ?? [])
      .filter((o) => !o.domain || o.domain === "ai.onnx")
      .map((o) => toNumber(o.version ?? 0)),
  );
  try {
    const { nodes, initializers } = subgraph(graph, file);
    const inputs = (graph.input ?? [])
      .filter((v) => !initializers.has(v.name ?? ""))
      .map((v) => ({
        name: v.name ?? "",
        dims: (v.type?.tensorType?.shape?.dim ?? []).map((d) =>
          d.dimParam ? d.dimParam : d.dimValue !== undefined && d.dimValue !== null ? toNumber(d.dimValue) : -1,
        ),
        dtype: elemDtype(v.type?.tensorType?.elemType ?? T.FLOAT),
      }));
    return {
      file,
      opset,
      producer: model.producerName ?? "",
      nodes,
      initializers,
      inputs,
      outputs: (graph.output ?? []).map((o) => o.name ?? ""),
    };
  } catch (e) {
    throw errors.badFile("loadOnnx", file, (e as Error).message, e);
  }
}
