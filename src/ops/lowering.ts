/**
 * ONNX lowering: how a registry op is written as standard ONNX nodes (opset 17) with PyTorch's
 * semantics. `OnnxBuilder` is a small, reusable graph writer (nodes, constants, inputs, outputs,
 * encoded with onnx-proto); an op's `onnx` field receives a `LowerContext` and adds the nodes that
 * compute it. The engine that runs prepared models in onnxruntime and any file writer (QDQ
 * export) go through the same builder.
 */
import { onnx } from "onnx-proto";
import type { Attrs } from "./registry";

export const ONNX_OPSET = 17;
const T = onnx.TensorProto.DataType;

export type OnnxElem = "float32" | "int64" | "bool" | "int32" | "float16" | "int8" | "int16";
const ELEM: Record<OnnxElem, number> = {
  float32: T.FLOAT,
  int64: T.INT64,
  bool: T.BOOL,
  int32: T.INT32,
  float16: T.FLOAT16,
  int8: T.INT8,
  int16: T.INT16,
};

/** IEEE half bits of a number (round to nearest even; overflow to ±Inf). */
export function toHalf(v: number): number {
  const f = new Float32Array(1);
  const u = new Uint32Array(f.buffer);
  f[0] = v;
  const x = u[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = mant >>> shift;
    const rest = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    return sign | (half + (rest > mid || (rest === mid && half & 1) ? 1 : 0));
  }
  const half = mant >>> 13;
  const rest = mant & 0x1fff;
  let h = (e << 10) | half;
  if (rest > 0x1000 || (rest === 0x1000 && half & 1)) h++;
  return sign | h;
}

type AttrValue = number | string | number[] | { int: number } | { ints: number[] } | { float: number };

/** Graph-building state: nodes in order, constants (initializers), inputs and outputs. */
export class OnnxBuilder {
  private readonly nodes: onnx.INodeProto[] = [];
  private readonly initializers: onnx.ITensorProto[] = [];
  private readonly inputs: onnx.IValueInfoProto[] = [];
  private readonly outputs: onnx.IValueInfoProto[] = [];
  private counter = 0;
  /** Small constants written once and shared (scalars, shapes, axes). */
  private readonly shared = new Map<string, string>();

  /** A fresh value name with a readable prefix. */
  fresh(prefix: string): string {
    return `${prefix.replace(/[^A-Za-z0-9_./:-]/g, "_")}#${this.counter++}`;
  }

  /** Adds a node; returns its output names (one unless `outputs` says more). */
  node(
    opType: string,
    inputs: string[],
    attrs: Record<string, AttrValue> = {},
    outputs = 1,
    prefix = opType,
  ): string[] {
    const outs = Array.from({ length: outputs }, () => this.fresh(prefix));
    this.nodes.push(
      onnx.NodeProto.create({
        opType,
        name: this.fresh(`n:${prefix}`),
        input: inputs,
        output: outs,
        attribute: Object.entries(attrs).map(([name, v]) => attribute(name, v)),
      }),
    );
    return outs;
  }

  /** A node whose one output gets a given name (a graph output). */
  named(opType: string, inputs: string[], output: string): string {
    this.nodes.push(
      onnx.NodeProto.create({ opType, name: this.fresh(`n:${opType}`), input: inputs, output: [output] }),
    );
    return output;
  }

  /** One-output node. */
  op(opType: string, inputs: string[], attrs: Record<string, AttrValue> = {}): string {
    return this.node(opType, inputs, attrs)[0];
  }

  private readonly domains = new Set<string>();

  /** A one-output node of another operator domain (version 1), e.g. com.microsoft's int16 QuantizeLinear. */
  opIn(domain: string, opType: string, inputs: string[], attrs: Record<string, AttrValue> = {}): string {
    const out = this.node(opType, inputs, attrs)[0];
    this.nodes[this.nodes.length - 1].domain = domain;
    this.domains.add(domain);
    return out;
  }

  /** A constant tensor (an initializer). */
  constant(
    data: ArrayLike<number> | ArrayLike<bigint> | Uint8Array,
    dims: number[],
    elem: OnnxElem = "float32",
    prefix = "const",
  ): string {
    const name = this.fresh(prefix);
    this.initializers.push(tensorProto(name, data, dims, elem));
    return name;
  }

  /** A float32 scalar constant, shared between uses. */
  scalar(v: number): string {
    return this.sharedConst(`f:${Object.is(v, -0) ? "-0" : v}`, () =>
      this.constant(Float32Array.of(v), [], "float32", "scalar"),
    );
  }

  /** An int64 vector (shapes, axes, pads, indices), shared between uses. */
  int64s(values: number[], dims: number[] = [values.length]): string {
    return this.sharedConst(`i:${dims}:${values}`, () => this.constant(values, dims, "int64", "ints"));
  }

  private sharedConst(key: string, make: () => string): string {
    let n = this.shared.get(key);
    if (n === undefined) {
      n = make();
      this.shared.set(key, n);
    }
    return n;
  }

  /** Reshape to a static shape (no node when the shape already is `from`). */
  reshape(x: string, to: number[], from?: number[]): string {
    if (from !== undefined && from.length === to.length && from.every((d, i) => d === to[i])) return x;
    return this.op("Reshape", [x, this.int64s(to)]);
  }

  addInput(name: string, elem: OnnxElem, dims: number[]): void {
    this.inputs.push(valueInfo(name, elem, dims));
  }

  addOutput(name: string, elem: OnnxElem = "float32"): void {
    this.outputs.push(valueInfo(name, elem, null));
  }

  /** Moves the last `count` nodes to the front (tests: graphs whose nodes are not in dependency order). */
  rotateNodes(count: number): void {
    this.nodes.unshift(...this.nodes.splice(this.nodes.length - count, count));
  }

  /** The model as ONNX bytes (opset 17, IR 8; plus version 1 of every other domain a node uses). */
  encode(graphName = "quantbook"): Uint8Array {
    const model = onnx.ModelProto.create({
      irVersion: 8,
      producerName: "quantbook",
      opsetImport: [
        { domain: "", version: ONNX_OPSET },
        ...[...this.domains].map((domain) => ({ domain, version: 1 })),
      ],
      graph: onnx.GraphProto.create({
        name: graphName,
        node: this.nodes,
        initializer: this.initializers,
        input: this.inputs,
        output: this.outputs,
      }),
    });
    return onnx.ModelProto.encode(model).finish();
  }

  get nodeCount(): number {
    return this.nodes.length;
  }
}

function attribute(name: string, v: AttrValue): onnx.IAttributeProto {
  const A = onnx.AttributeProto.AttributeType;
  if (typeof v === "string") return { name, type: A.STRING, s: new TextEncoder().encode(v) };
  if (typeof v === "number") return Number.isInteger(v) ? { name, type: A.INT, i: v } : { name, type: A.FLOAT, f: v };
  if (Array.isArray(v)) return { name, type: A.INTS, ints: v };
  if ("int" in v) return { name, type: A.INT, i: v.int };
  if ("float" in v) return { name, type: A.FLOAT, f: v.float };
  return { name, type: A.INTS, ints: v.ints };
}

export function tensorProto(
  name: string,
  data: ArrayLike<number> | ArrayLike<bigint> | Uint8Array,
  dims: number[],
  elem: OnnxElem,
): onnx.ITensorProto {
  let bytes: Uint8Array;
  if (elem === "float32")
    bytes = new Uint8Array(
      (data instanceof Float32Array ? data : Float32Array.from(data as ArrayLike<number>)).slice().buffer,
    );
  else if (elem === "int32") bytes = new Uint8Array(Int32Array.from(data as ArrayLike<number>).buffer);
  else if (elem === "float16")
    bytes = new Uint8Array(Uint16Array.from(data as ArrayLike<number>, (v) => toHalf(v)).buffer);
  else if (elem === "bool") bytes = Uint8Array.from(data as ArrayLike<number>, (v) => (v ? 1 : 0));
  else if (elem === "int8") bytes = new Uint8Array(Int8Array.from(data as ArrayLike<number>).buffer);
  else if (elem === "int16") bytes = new Uint8Array(Int16Array.from(data as ArrayLike<number>).buffer);
  else
    bytes = new Uint8Array(BigInt64Array.from(Array.from(data as ArrayLike<number | bigint>, (v) => BigInt(v))).buffer);
  return { name, dims, dataType: ELEM[elem], rawData: bytes };
}

function valueInfo(name: string, elem: OnnxElem, dims: number[] | null): onnx.IValueInfoProto {
  return onnx.ValueInfoProto.create({
    name,
    type: {
      tensorType: {
        elemType: ELEM[elem],
        ...(dims === null ? {} : { shape: { dim: dims.map((d) => ({ dimValue: d })) } }),
      },
    },
  });
}

/** What an op's lowering receives: value names of its (already fake-quantized) operands, their shapes, its attributes. */
export interface LowerContext {
  b: OnnxBuilder;
  inputs: string[];
  inputShapes: number[][];
  /** The (fake-quantized) weight, when the op has one. */
  weight?: string | undefined;
  weightShape?: number[] | undefined;
  /** Float parameters (biases, masks), as constants. */
  params: string[];
  paramShapes: number[][];
  /** Float values of the parameters (for lowerings that fold them, e.g. a mask into a condition). */
  paramValues: Float32Array[];
  attrs: Attrs;
  outputShape: number[];
}

/** An op's lowering: adds the nodes computing it and returns its output's value name. */
export type Lowering = (ctx: LowerContext) => string;

/** A lowering of a one-input ONNX op of the same meaning (Relu, Sigmoid, ...). */
export const unary =
  (opType: string, attrs: (a: Attrs) => Record<string, AttrValue> = () => ({})): Lowering =>
  ({ b, inputs: [x], attrs: a }) =>
    b.op(opType, [x], attrs(a));

/** Float attribute (ONNX distinguishes 1.0 from 1). */
export const float = (v: number): { float: number } => ({ float: v });

/** Reduction axes of a registry attribute (undefined or null: every axis), non-negative. */
export function axesOf(axis: unknown, rank: number): number[] {
  if (axis === undefined || axis === null) return Array.from({ length: rank }, (_, i) => i);
  return (Array.isArray(axis) ? (axis as number[]) : [axis as number]).map((a) => (a < 0 ? a + rank : a));
}
