/**
 * Compiles a prepared model into one ONNX graph for onnxruntime: every op through its registry
 * lowering, every quantization point as float ops `Where(on, Mul(Clip(Round(Mul(x, 1/s)), qmin,
 * qmax), s), x)` (BPU rounding: `Floor(x / s + 0.5)`), with `s`, `1/s`, qmin, qmax and `on` as
 * graph inputs (a quantized weight is itself an input, fed raw or fake-quantized by quantbook's
 * own kernel once per scale: re-quantizing millions of weights in every run would cost more than the model) — so one session serves float runs, validation, one-point-on sensitivity runs and
 * int8 / int16 what-ifs without a rebuild, and onnxruntime's optimizer cannot fold the scales
 * into weights. For calibration, a second variant also returns what the observers need: per-point
 * `ReduceMin` / `ReduceMax` for range observers, the tensor itself for the others.
 */
import * as tf from "@tensorflow/tfjs";
import type { Module } from "../../nn/module";
import { findOp } from "../../ops";
import { OnnxBuilder } from "../../ops/lowering";
import type { FakeQuantizer } from "../../quant/fakeQuantizer";
import { FakeQuantState } from "../../quant/state";
import { FLOAT_CONSTANT, isModelInput } from "../graph";
import { withPoints, type QuantRuntime, type TapRole } from "../quantRuntime";

/** What the forward computed with constants: weights, float parameters and `<float>` inputs, by op. */
export interface Capture {
  weights: Map<string, { data: Float32Array; shape: number[] }>;
  params: Map<string, Float32Array[]>;
  constants: Map<string, Map<number, Float32Array>>;
  /** The model's outputs as the forward returns them (shapes, in order). */
  outputShapes: number[][];
  inputs: { shape: number[]; dtype: string }[];
  /** Tensors the model keeps (weights, buffers) with the data they had: a changed one (QAT, a loaded state dict) invalidates the compile. */
  guards: { tensor: tf.Tensor; dataId: object }[];
}

/** How calibration reads a point: reductions in the graph, the tensor itself, or (weights) its constant. */
export type Observation =
  { kind: "extremes"; min: string; max: string } | { kind: "tensor"; name: string; shape: number[] };

export interface PointSlot {
  fq: FakeQuantizer;
  scale: string;
  inv: string;
  qmin: string;
  qmax: string;
  on: string;
  /** Dims of the scale inputs: [] per tensor, else 1s with the channels on the axis. */
  scaleDims: number[];
  /** The point quantizes a weight constant (calibration observes it once per batch from its values). */
  weight?: { data: Float32Array; shape: number[] } | undefined;
  /** The graph input the (fake-quantized) weight is fed to. */
  weightInput?: string | undefined;
  observations: Observation[];
  /** Index (in the graph's op order) of the first op that uses the point: a run that starts at or before it sees the point. */
  firstOp: number;
}

/** A graph input fed from data: a model input (`<input:i>`) or, in a graph cut at an op, the float value of an earlier op (its name). */
export interface ValueInput {
  name: string;
  shape: number[];
  source: string;
}

export interface Lowered {
  bytes: Uint8Array;
  slots: PointSlot[];
  inputs: ValueInput[];
  outputs: { name: string; shape: number[] }[];
  /** Values asked for with `expose`, as extra outputs (name of the output, by source). */
  exposed: ValueInput[];
  nodes: number;
}

export interface LowerOptions {
  /** The calibration variant: what each observer reads as extra outputs. */
  observe?: boolean;
  /** No quantization points at all, weights as constants (the float reference of the bench). */
  plain?: boolean;
  /**
   * Start at this op (index in the graph's op order): the values it and later ops read from
   * earlier ops or the model inputs become graph inputs, fed their float values. A one-point run
   * then skips the float prefix before its point.
   */
  from?: number;
  /** Sources (op names, `<input:i>`) whose values become extra outputs (what the cut graphs are fed). */
  expose?: ReadonlySet<string>;
  /**
   * A deployable QDQ graph: every point that quantizes is `QuantizeLinear → DequantizeLinear`
   * with its scales as constants (per channel where quantbook is), weights as constants; an int16
   * point uses com.microsoft's QuantizeLinear (standard ONNX takes int16 from opset 21 only). ONNX rounds x / s half to even (quantbook multiplies by 1/s), so a
   * near-tie may land one step away; BPU rounding has no QuantizeLinear form and is written the same way.
   */
  qdq?: boolean;
}

/** Why a model cannot run on the engine: one line for the notice, naming what to change. */
export class Unsupported {
  constructor(readonly reason: string) {}
}

const sizeOf = (s: number[]) => s.reduce((a, b) => a * b, 1);
const sameShape = (a: number[], b: number[]) => a.length === b.length && a.every((d, i) => d === b[i]);

/** Op types of the model that have no ONNX lowering, or untraced inputs: the reasons it must stay on tfjs. */
export function engineBlockers(rt: QuantRuntime): string | null {
  const missing = [...new Set(rt.graph.ops.filter((o) => findOp(o.type)?.onnx === undefined).map((o) => o.type))];
  if (missing.length > 0) return `no ONNX lowering for ${missing.join(", ")}`;
  const untraced = rt.graph.ops.find((o) => o.inputs.some((i) => i.untraced));
  if (untraced) return `${untraced.name} takes a tensor made by a raw tf op (not traced)`;
  return null;
}

/** Runs the model once in float with taps that copy every constant it uses. */
export function capture(model: Module, rt: QuantRuntime, args: tf.Tensor[]): Capture | Unsupported {
  const cap: Capture = {
    weights: new Map(),
    params: new Map(),
    constants: new Map(),
    outputShapes: [],
    inputs: args.map((a) => ({ shape: a.shape.slice(), dtype: a.dtype })),
    guards: [],
  };
  const seen = new Set<tf.Tensor>();
  const keep = (t: tf.Tensor) => {
    if (!seen.has(t)) {
      seen.add(t);
      cap.guards.push({ tensor: t, dataId: t.dataId });
    }
    return Float32Array.from(t.dataSync() as Float32Array);
  };
  const tap = (
    op: { info: { name: string; inputs: { source: string }[] } },
    role: TapRole,
    _v: tf.Tensor,
    raw: tf.Tensor,
  ) => {
    const name = op.info.name;
    if (role === "weight") cap.weights.set(name, { data: keep(raw), shape: raw.shape.slice() });
    else if (role.startsWith("param_")) {
      const ps = cap.params.get(name) ?? [];
      ps[Number(role.slice(6))] = keep(raw);
      cap.params.set(name, ps);
    } else if (role.startsWith("input_")) {
      const i = Number(role.slice(6));
      if (op.info.inputs[i]?.source !== FLOAT_CONSTANT) return;
      const cs = cap.constants.get(name) ?? new Map<number, Float32Array>();
      cs.set(i, keep(raw));
      cap.constants.set(name, cs);
    }
  };
  rt.taps.push(tap);
  try {
    withPoints(
      rt,
      FakeQuantState.FLOAT,
      (_o, _r, fq) => (fq.fakeQuantOverride = false),
      () =>
        tf.tidy(() => {
          const out = (model.forward as (...a: tf.Tensor[]) => unknown)(...args);
          const flat: tf.Tensor[] = [];
          const visit = (v: unknown): void => {
            if (v instanceof tf.Tensor) flat.push(v);
            else if (Array.isArray(v)) v.forEach(visit);
            else if (v !== null && typeof v === "object") Object.values(v).forEach(visit);
          };
          visit(out);
          cap.outputShapes = flat.map((t) => t.shape.slice());
        }),
    );
  } finally {
    rt.taps.splice(rt.taps.indexOf(tap), 1);
  }
  // tensors made inside the forward (shape-derived masks) were freed: only the model's own are guards
  cap.guards = cap.guards.filter((g) => !g.tensor.isDisposed);
  if (cap.outputShapes.length !== rt.graph.outputs.length) {
    return new Unsupported(
      `the forward returns ${cap.outputShapes.length} tensors, ${rt.graph.outputs.length} of them from quantbook ops (a model input returned as it is, or a raw tf op at the end)`,
    );
  }
  return cap;
}

/** Whether the constants a capture copied are still the model's (nothing assigned or disposed since). */
export function captureValid(cap: Capture): boolean {
  return cap.guards.every((g) => !g.tensor.isDisposed && g.tensor.dataId === g.dataId);
}

/** The shape of a source's value: a model input's, or its op's output. */
function shapeOfSource(rt: QuantRuntime, cap: Capture, source: string): number[] | undefined {
  if (isModelInput(source)) return cap.inputs[Number(source.slice(7, -1))]?.shape;
  return rt.graph.ops.find((o) => o.name === source)?.outputShape;
}

/** Writes the graph (see LowerOptions for the variants). */
export function lower(rt: QuantRuntime, cap: Capture, opts: LowerOptions = {}): Lowered | Unsupported {
  const { observe = false, plain = false, from = 0, qdq = false } = opts;
  /** The point as QuantizeLinear → DequantizeLinear with constant scales (a quantizing point), or x (float). */
  const qdqOf = (fq: FakeQuantizer, x: string, xShape: number[]): string | Unsupported => {
    if (!fq.quantizing) return x;
    const scale = fq.scale();
    if (scale === null) return new Unsupported(`${fq.where} has no scale: calibrate the model before writing it`);
    const elem = fq.dtype.name === "qint16" ? "int16" : fq.dtype.name === "qint8" ? "int8" : null;
    if (elem === null) return new Unsupported(`${fq.where} is ${fq.dtype.name}: QDQ writes int8 and int16 points`);
    const perChannel = fq.axis !== undefined && scale.length > 1;
    const axis = fq.axis === undefined ? undefined : fq.axis < 0 ? fq.axis + xShape.length : fq.axis;
    const s = b.constant(Float32Array.from(scale), perChannel ? [scale.length] : [], "float32", `${fq.where}.scale`);
    const zp = b.constant(
      new Array<number>(perChannel ? scale.length : 1).fill(0),
      perChannel ? [scale.length] : [],
      elem,
      `${fq.where}.zero_point`,
    );
    const attrs = perChannel ? { axis: axis as number } : {};
    // int16 Q/DQ: standard ONNX only from opset 21 (whose other ops moved attributes to inputs); com.microsoft's takes int16 at opset 17
    if (elem === "int16")
      return b.opIn(
        "com.microsoft",
        "DequantizeLinear",
        [b.opIn("com.microsoft", "QuantizeLinear", [x, s, zp], attrs), s, zp],
        attrs,
      );
    return b.op("DequantizeLinear", [b.op("QuantizeLinear", [x, s, zp], attrs), s, zp], attrs);
  };
  const b = new OnnxBuilder();
  const slots = new Map<FakeQuantizer, PointSlot>();
  const values = new Map<string, { name: string; shape: number[] }>();
  const inputs: ValueInput[] = [];
  const feedInput = (source: string, shape: number[]) => {
    const name = isModelInput(source) ? `input:${source.slice(7, -1)}` : `value:${source}`;
    b.addInput(name, "float32", shape);
    values.set(source, { name, shape });
    inputs.push({ name, shape, source });
  };
  if (from === 0) cap.inputs.forEach((inp, i) => feedInput(`<input:${i}>`, inp.shape));
  let opIndex = 0;

  const slotOf = (fq: FakeQuantizer, xShape: number[], weight?: { data: Float32Array; shape: number[] }): PointSlot => {
    let slot = slots.get(fq);
    if (slot === undefined) {
      const k = slots.size;
      const axis = fq.axis === undefined ? undefined : fq.axis < 0 ? fq.axis + xShape.length : fq.axis;
      const scaleDims = axis === undefined ? [] : xShape.map((d, i) => (i === axis ? d : 1));
      const names = ["s", "inv", "qmin", "qmax", "on"].map((p) => `p${k}:${p}`);
      if (weight === undefined)
        names.forEach((n, i) => b.addInput(n, i === 4 ? "bool" : "float32", i < 2 ? scaleDims : []));
      slot = {
        fq,
        scale: names[0],
        inv: names[1],
        qmin: names[2],
        qmax: names[3],
        on: names[4],
        scaleDims,
        observations: [],
        firstOp: opIndex,
      };
      if (weight !== undefined) {
        slot.weight = weight;
        slot.weightInput = `p${k}:w`;
        b.addInput(slot.weightInput, "float32", weight.shape);
      }
      slots.set(fq, slot);
    }
    return slot;
  };

  /** The point's fake quantization of x; `primary`: where the observer watches x (not a regrid). */
  let failure: Unsupported | null = null;
  const point = (fq: FakeQuantizer, x: string, xShape: number[], primary: boolean): string => {
    if (plain) return x;
    if (qdq) {
      const y = qdqOf(fq, x, xShape);
      if (y instanceof Unsupported) {
        failure ??= y;
        return x;
      }
      return y;
    }
    const slot = slotOf(fq, xShape);
    if (primary && observe) {
      const k = slots.size;
      if (fq.observer.rangeFromExtremes(new Float64Array(0), new Float64Array(0)) !== null) {
        const ax = fq.axis === undefined ? undefined : fq.axis < 0 ? fq.axis + xShape.length : fq.axis;
        const axes = xShape.map((_, i) => i).filter((i) => i !== ax);
        const [mn, mx] = [b.op("ReduceMin", [x], { axes, keepdims: 0 }), b.op("ReduceMax", [x], { axes, keepdims: 0 })];
        const o = {
          kind: "extremes" as const,
          min: `obs${k}.${slot.observations.length}:min`,
          max: `obs${k}.${slot.observations.length}:max`,
        };
        slot.observations.push(o);
        identityTo(b, mn, o.min);
        identityTo(b, mx, o.max);
      } else {
        const o = { kind: "tensor" as const, name: `obs${k}.${slot.observations.length}:x`, shape: xShape };
        slot.observations.push(o);
        identityTo(b, x, o.name);
      }
    }
    const q =
      fq.roundMode === "bpu"
        ? b.op("Floor", [b.op("Add", [b.op("Div", [x, slot.scale]), b.scalar(0.5)])])
        : b.op("Round", [b.op("Mul", [x, slot.inv])]);
    const y = b.op("Mul", [b.op("Clip", [q, slot.qmin, slot.qmax]), slot.scale]);
    return b.op("Where", [slot.on, y, x]);
  };

  for (const [index, info] of rt.graph.ops.entries()) {
    opIndex = index;
    if (index < from) continue;
    const op = rt.ops.get(info.name);
    const def = findOp(info.type);
    if (op === undefined || def?.onnx === undefined)
      return new Unsupported(`no ONNX lowering for ${info.type} (${info.name})`);
    const consts = cap.constants.get(info.name);
    const ins: string[] = [];
    for (const [i, inp] of info.inputs.entries()) {
      let v: string;
      if (inp.source === FLOAT_CONSTANT) {
        const data = consts?.get(i);
        if (data === undefined || inp.untraced)
          return new Unsupported(`${info.name} input ${i} is a tensor made outside quantbook's ops`);
        v = b.constant(data, inp.shape, "float32", `${info.name}.const`);
      } else {
        if (!values.has(inp.source) && from > 0) {
          const shape = shapeOfSource(rt, cap, inp.source);
          if (shape !== undefined) feedInput(inp.source, shape);
        }
        const src = values.get(inp.source);
        if (src === undefined)
          return new Unsupported(`${info.name} input ${i} comes from ${inp.source}, which has not run yet`);
        if (
          isModelInput(inp.source) &&
          cap.inputs[Number(inp.source.slice(7, -1))]?.dtype !== "float32" &&
          info.type !== "QuantStub"
        ) {
          return new Unsupported(`${info.name} (${info.type}) reads an integer model input directly`);
        }
        if (sizeOf(src.shape) !== sizeOf(inp.shape))
          return new Unsupported(
            `${info.name} input ${i} was changed by a raw tf op between ops ([${src.shape}] → [${inp.shape}])`,
          );
        v = sameShape(src.shape, inp.shape) ? src.name : b.reshape(src.name, inp.shape);
      }
      const fq = op.inputs[i];
      ins.push(fq ? point(fq, v, inp.shape, true) : v);
    }
    let weight: string | undefined;
    const w = cap.weights.get(info.name);
    if (info.weightShape !== undefined) {
      if (w === undefined) return new Unsupported(`${info.name} has a weight the float run did not pass`);
      if (op.weight && qdq) {
        const y = qdqOf(op.weight, b.constant(w.data, w.shape, "float32", `${info.name}.weight`), w.shape);
        if (y instanceof Unsupported) return y;
        weight = y;
      } else if (op.weight && plain !== true) {
        // a quantized weight is a graph input: the engine feeds it raw or fake-quantized (computed once per scale),
        // so a run pays no per-element work for weights that did not change
        weight = slotOf(op.weight, w.shape, w).weightInput;
      } else weight = b.constant(w.data, w.shape, "float32", `${info.name}.weight`);
    }
    const paramData = cap.params.get(info.name) ?? [];
    const params = info.paramShapes.map((shape, i) =>
      b.constant(paramData[i] ?? new Float32Array(sizeOf(shape)), shape, "float32", `${info.name}.param`),
    );
    let out = def.onnx({
      b,
      inputs: ins,
      inputShapes: info.inputs.map((i) => i.shape),
      weight,
      weightShape: info.weightShape,
      params,
      paramShapes: info.paramShapes,
      paramValues: paramData,
      attrs: info.attrs,
      outputShape: info.outputShape,
    });
    if (op.output) out = point(op.output, out, info.outputShape, true);
    else if (def.insertsValues) {
      const grid = rt.outputQuantizer(info.name);
      if (grid) out = point(grid, out, info.outputShape, false);
    }
    values.set(info.name, { name: out, shape: info.outputShape });
  }
  const outputs = rt.graph.outputs.map((name, i) => {
    if (!values.has(name)) feedInput(name, shapeOfSource(rt, cap, name) as number[]);
    const v = values.get(name) as { name: string; shape: number[] };
    const shape = cap.outputShapes[i];
    const out = `output:${i}`;
    identityTo(b, sizeOf(v.shape) === sizeOf(shape) ? b.reshape(v.name, shape, v.shape) : v.name, out);
    return { name: out, shape };
  });
  const exposed = [...(opts.expose ?? [])].flatMap((source) => {
    const v = values.get(source);
    if (v === undefined) return [];
    const name = `exposed:${source}`;
    identityTo(b, v.name, name);
    return [{ name, shape: v.shape, source }];
  });
  if (failure !== null) return failure;
  return { bytes: b.encode(), slots: [...slots.values()], inputs, outputs, exposed, nodes: b.nodeCount };
}

/** Names `x` as the graph output `name`. */
function identityTo(b: OnnxBuilder, x: string, name: string): void {
  b.named("Identity", [x], name);
  b.addOutput(name);
}
