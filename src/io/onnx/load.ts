/**
 * `qb.io.loadOnnx(pathOrBytes, { inputShapes? })`: an exported PyTorch or Paddle graph as a
 * `qb.nn.Module`, so every quantbook tool works on it. Weighted nodes become layers at torch's
 * module paths (Conv → Conv2d, ConvTranspose → ConvTranspose2d, Gemm / MatMul with a constant
 * weight (+ Add of a constant bias) → Linear, BatchNormalization → BatchNorm2d,
 * LayerNormalization or its decomposed form → LayerNorm); Erf-GELU, x·HardSigmoid(x) and
 * x·Sigmoid(x) become GELU, HardSwish and SiLU. Unsupported ops are one error before anything is
 * built; nothing is half-loaded.
 */
import * as tf from "@tensorflow/tfjs";
import { readFile } from "node:fs/promises";
import { ensureBackend, repairEngine, scopeDepth } from "../../backend";
import { carriesContext, errors } from "../../messages";
import { BatchNorm2d } from "../../nn/batchnorm";
import { Conv2d } from "../../nn/conv";
import { ConvTranspose2d } from "../../nn/convTranspose";
import * as F from "../../nn/functional";
import { LayerNorm } from "../../nn/layernorm";
import { Linear } from "../../nn/linear";
import type { Module } from "../../nn/module";
import { constTensor, OnnxGraphModule, OnnxScope } from "./graphModule";
import { cleanPath, nodeNames, ownOpScopes, scopePath } from "./names";
import { cancelTransposes } from "./layout";
import { fixInputs, foldIfs, unsupportedOps, type ConstantInput } from "./control";
import { planRecurrent } from "./recurrent";
import {
  movesValues,
  contextOf,
  handledOpTypes,
  handlerStep,
  lift1dAttr,
  moduleStep,
  to1d,
  to2d,
  type PlanStep,
} from "./plan";
import { readOnnx, type AttrValue, type ConstValue, type OnnxGraph, type OnnxNode } from "./proto";

export interface LoadOnnxOptions {
  /** Shapes for graph inputs with dynamic dims, by input name (or in input order); checks the graph runs at load. */
  inputShapes?: Record<string, number[]> | number[][];
  /**
   * Inputs fixed to a value at load (a sample rate, a mode flag): they become constants, so an
   * `If` on them folds to the branch it takes. The loaded model no longer takes them as inputs.
   */
  constantInputs?: Record<string, ConstantInput>;
}

const near = (a: number, b: number, tol = 1e-3) => Math.abs(a - b) <= tol * Math.max(1, Math.abs(b));

class Builder {
  readonly consts = new Map<string, ConstValue>();
  /** Values found to depend on a model input (remembered, so each is asked about once: load time stays linear). */
  readonly dynamic = new Set<string>();
  readonly producer = new Map<string, number>();
  readonly consumers = new Map<string, number[]>();
  readonly done = new Set<number>();
  readonly steps: PlanStep[] = [];
  readonly layers: [string, Module][] = [];
  /** Constants read by handler steps (root fields), and those that are data of an arithmetic op (parameters). */
  readonly usedConsts = new Set<string>();
  readonly dataConsts = new Set<string>();
  readonly paths = new Set<string>();
  readonly taken = new Set<string>();
  /** Leaf scopes with a single node: that node is the module's own op. */
  readonly ownOps: Set<string>;

  constructor(readonly g: OnnxGraph) {
    this.ownOps = ownOpScopes(g.nodes.filter((n) => n.opType !== "Constant").map((n) => n.name));
    for (const [k, v] of g.initializers) this.consts.set(k, v);
    g.nodes.forEach((n, i) => {
      n.outputs.forEach((o) => this.producer.set(o, i));
      n.inputs.forEach((inp) => {
        if (inp !== "") this.consumers.set(inp, [...(this.consumers.get(inp) ?? []), i]);
      });
      if (n.opType === "Constant") {
        const v = constantValue(n);
        this.consts.set(n.outputs[0], v);
        this.done.add(i);
      }
      const p = cleanPath(scopePath(n.name));
      const segs = p.split(".");
      for (let k = 1; k <= segs.length; k++) if (p !== "") this.paths.add(segs.slice(0, k).join("."));
    });
  }

  node(i: number): OnnxNode {
    return this.g.nodes[i];
  }

  /** The only consumer of a value, or undefined. */
  soleConsumer(value: string): number | undefined {
    const c = this.consumers.get(value) ?? [];
    return c.length === 1 && !this.g.outputs.includes(value) ? c[0] : undefined;
  }

  /** A value known at load time: a constant, or computed from constants only (no input shapes needed). */
  staticValue(name: string): ConstValue | null {
    const c = this.consts.get(name);
    if (c !== undefined) return c;
    if (this.dynamic.has(name)) return null;
    const i = this.producer.get(name);
    const n = i === undefined ? null : this.node(i);
    if (n === null || n.opType === "Shape" || !handledOpTypes().includes(n.opType)) {
      this.dynamic.add(name);
      return null;
    }
    const ins: (ConstValue | null)[] = [];
    for (const x of n.inputs) {
      const v = x === "" ? null : this.staticValue(x);
      if (v === null && x !== "") {
        n.outputs.forEach((o) => this.dynamic.add(o));
        return null;
      }
      ins.push(v);
    }
    const ctx = contextOf(n, this.g.opset, "", "");
    const step = handlerStep(ctx);
    const tensors = tf.tidy(() =>
      step.run(
        null as unknown as OnnxGraphModule,
        ins.map((v) => (v === null ? undefined : constTensor(v))),
        true,
      ),
    );
    const out = tensors.map(
      (t) =>
        ({
          dims: t.shape.slice(),
          dtype: t.dtype === "float32" ? "float32" : t.dtype === "bool" ? "bool" : "int32",
          data: t.dataSync().slice(),
        }) as ConstValue,
    );
    tf.dispose(tensors);
    n.outputs.forEach((o, k) => out[k] && this.consts.set(o, out[k]));
    return this.consts.get(name) ?? null;
  }

  /** A free module path for a layer (torch's scope path, made unique), with container scopes made. */
  layerPath(n: OnnxNode): string {
    const { path, opName } = nodeNames(n.name, this.paths, n.outputs[0] ?? "");
    const base = path === "" ? (opName ?? n.opType.toLowerCase()) : path;
    let p = base;
    for (let k = 1; this.taken.has(p); k++) p = `${base}_${k}`;
    this.taken.add(p);
    return p;
  }

  addLayer(path: string, m: Module): void {
    this.layers.push([path, m]);
  }
}

/** The value of a Constant node (value, value_float(s), value_int(s)). */
function constantValue(n: OnnxNode): ConstValue {
  const a = n.attrs;
  if (a.value && typeof a.value === "object" && !Array.isArray(a.value)) return a.value as ConstValue;
  if (typeof a.value_float === "number") return { data: Float32Array.of(a.value_float), dims: [], dtype: "float32" };
  if (typeof a.value_int === "number") return { data: Int32Array.of(a.value_int), dims: [], dtype: "int32" };
  if (Array.isArray(a.value_floats))
    return { data: Float32Array.from(a.value_floats as number[]), dims: [a.value_floats.length], dtype: "float32" };
  if (Array.isArray(a.value_ints))
    return { data: Int32Array.from(a.value_ints as number[]), dims: [a.value_ints.length], dtype: "int32" };
  throw errors.corruptData(
    `Constant node ${n.name} has no value quantbook reads (value, value_float(s), value_int(s))`,
  );
}

const setParam = (m: Module, field: string, v: ConstValue | null) => {
  const holder = m as unknown as Record<string, tf.Variable | null>;
  holder[field]?.dispose();
  holder[field] = v === null ? null : tf.tidy(() => tf.variable(constTensor(v), false));
};

const attrs = (n: OnnxNode) => contextOf(n, 0, "", "");

function weightOf(b: Builder, n: OnnxNode, k: number, what: string): ConstValue {
  const v = n.inputs[k] ? b.staticValue(n.inputs[k]) : null;
  if (v === null)
    throw errors.unsupported(
      `loadOnnx: ${n.name} (${n.opType})`,
      `a ${what} computed at run time`,
      "export with constant weights (torch.onnx.export(..., do_constant_folding=True))",
    );
  return v;
}

function planConv(b: Builder, i: number): void {
  const n = b.node(i);
  const a = attrs(n);
  const w0 = weightOf(b, n, 1, "weight");
  const bias = n.inputs[2] ? weightOf(b, n, 2, "bias") : null;
  if (w0.dims.length !== 4 && w0.dims.length !== 3)
    throw errors.unsupported(
      `loadOnnx: ${n.name}`,
      `a ${w0.dims.length - 2}-D convolution`,
      "quantbook imports 1-D and 2-D convolutions",
    );
  // a 1-D convolution (N, C, L) runs as a 2-D one over (N, C, 1, L): kernel [1, K], the 1-D attributes on the width
  const oneD = w0.dims.length === 3;
  const w = oneD ? { ...w0, dims: [w0.dims[0], w0.dims[1], 1, w0.dims[2]] } : w0;
  const a2 = oneD ? lift1dAttrs(a) : a;
  const transposed = n.opType === "ConvTranspose";
  const groups = a.attr("group", 1);
  const [kh, kw] = w.dims.slice(2);
  const pads = a2.attr("pads", [0, 0, 0, 0]);
  if (pads.length !== 4 || !pads.every((v) => Number.isInteger(v) && v >= 0)) {
    throw errors.badFile(
      "loadOnnx",
      b.g.file,
      `node ${n.name} (${n.opType}): pads [${pads}] must be four non-negative integers [top, left, bottom, right]`,
    );
  }
  const autoPad = a.attr("auto_pad", "NOTSET");
  const sym = pads[0] === pads[2] && pads[1] === pads[3];
  const stride = a2.attr("strides", [1, 1]) as [number, number];
  const dilation = a2.attr("dilations", [1, 1]) as [number, number];
  const path = b.layerPath(n);
  let m: Module;
  const outputPadding = a2.attr("output_padding", [0, 0]) as [number, number];
  const outputShape = a2.attr("output_shape", [] as number[]);
  // PyTorch's form (symmetric pads, no output_shape) is the layer itself; any other (asymmetric
  // or automatic pads, an output_shape) is the full transposed convolution and a crop after it
  const torchForm = transposed && sym && autoPad === "NOTSET" && outputShape.length === 0;
  if (transposed) {
    const outC = w.dims[1] * groups;
    m = new ConvTranspose2d(w.dims[0], outC, [kh, kw], {
      stride,
      padding: torchForm ? [pads[0], pads[1]] : [0, 0],
      outputPadding,
      dilation,
      groups,
      bias: bias !== null,
    });
  } else {
    m = new Conv2d(w.dims[1] * groups, w.dims[0], [kh, kw], {
      stride,
      padding: sym && autoPad === "NOTSET" ? [pads[0], pads[1]] : [0, 0],
      dilation,
      groups,
      bias: bias !== null,
    });
  }
  setParam(m, "weight", w);
  if (bias) setParam(m, "bias", bias);
  b.addLayer(path, m);
  // asymmetric or automatic padding happens before the layer (a padding op keeps the input's scale)
  const pre =
    transposed || (sym && autoPad === "NOTSET")
      ? undefined
      : (x: tf.Tensor) => {
          let p = pads;
          if (autoPad === "SAME_UPPER" || autoPad === "SAME_LOWER") {
            const total = [0, 1].map((d) =>
              Math.max(
                0,
                (Math.ceil(x.shape[2 + d] / stride[d]) - 1) * stride[d] +
                  (dilation[d] * ((d === 0 ? kh : kw) - 1) + 1) -
                  x.shape[2 + d],
              ),
            );
            const lo = total.map((t) => (autoPad === "SAME_UPPER" ? Math.floor(t / 2) : Math.ceil(t / 2)));
            p = [lo[0], lo[1], total[0] - lo[0], total[1] - lo[1]];
          } else if (autoPad === "VALID") p = [0, 0, 0, 0];
          return F.pad(x, [p[1], p[3], p[0], p[2]], 0, { name: `${path.replace(/\./g, "_")}_pad` });
        };
  const crop =
    !transposed || torchForm
      ? undefined
      : (y: tf.Tensor) => {
          // ONNX: total = stride·(in − 1) + output_padding + (k − 1)·dilation + 1 − out; SAME_UPPER puts the odd one at the end
          const full = [y.shape[2] as number, y.shape[3] as number];
          const cut = [0, 1].map((d) => {
            if (outputShape.length === 0 && autoPad === "NOTSET") return [pads[d], pads[d + 2]];
            const inSize = (full[d] - outputPadding[d] - ((d === 0 ? kh : kw) - 1) * dilation[d] - 1) / stride[d] + 1;
            const out =
              outputShape.length > 0
                ? outputShape[outputShape.length - 2 + d]
                : autoPad === "VALID"
                  ? full[d]
                  : inSize * stride[d];
            const total = Math.max(0, full[d] - out);
            return autoPad === "SAME_UPPER"
              ? [Math.floor(total / 2), total - Math.floor(total / 2)]
              : [total - Math.floor(total / 2), Math.floor(total / 2)];
          });
          if (cut.every(([lo, hi]) => lo === 0 && hi === 0)) return y;
          return F.slice(y, [cut[0][0], cut[1][0]], [full[0] - cut[0][1], full[1] - cut[1][1]], [2, 3], [1, 1], {
            name: `${path.replace(/\./g, "_")}_crop`,
          });
        };
  const pre1 = oneD ? (x: tf.Tensor) => (pre ?? ((t: tf.Tensor) => t))(to2d(x)) : pre;
  const post1 = oneD ? (y: tf.Tensor) => to1d(crop ? crop(y) : y) : crop;
  b.steps.push(moduleStep(n, path, n.inputs[0], n.outputs, pre1, post1));
}

/** A 1-D node's attributes as their 2-D form over (1, L) (see lift1dAttr). */
function lift1dAttrs(a: ReturnType<typeof attrs>): ReturnType<typeof attrs> {
  return {
    ...a,
    attr: ((name: string, fallback: AttrValue) => lift1dAttr(name, a.attr(name, fallback))) as typeof a.attr,
  };
}

/** Gemm, or MatMul with a constant 2-D weight (and an Add of a constant bias after it): a Linear. */
function planLinear(b: Builder, i: number): boolean {
  const n = b.node(i);
  const a = attrs(n);
  const isGemm = n.opType === "Gemm";
  const w = n.inputs[1] ? b.staticValue(n.inputs[1]) : null;
  if (w === null || w.dims.length !== 2 || w.dtype !== "float32") return false;
  const transA = isGemm && a.attr("transA", 0) !== 0;
  let bias: ConstValue | null = isGemm && n.inputs[2] ? b.staticValue(n.inputs[2]) : null;
  let outputs = n.outputs;
  const transB = isGemm && a.attr("transB", 0) === 1;
  const [inF, outF] = transB ? [w.dims[1], w.dims[0]] : [w.dims[0], w.dims[1]];
  if (isGemm && n.inputs[2] && bias === null) return false;
  if (!isGemm) {
    const addIdx = b.soleConsumer(n.outputs[0]);
    const add = addIdx === undefined ? undefined : b.node(addIdx);
    if (add && add.opType === "Add") {
      const other = add.inputs[0] === n.outputs[0] ? add.inputs[1] : add.inputs[0];
      const c = b.staticValue(other);
      if (c !== null && c.data.length === outF && c.dtype === "float32") {
        bias = c;
        outputs = add.outputs;
        b.done.add(addIdx as number);
      }
    }
  }
  const alpha = isGemm ? a.attr("alpha", 1) : 1;
  const beta = isGemm ? a.attr("beta", 1) : 1;
  const scaled = (v: ConstValue, k: number): ConstValue =>
    k === 1 ? v : { ...v, data: Float32Array.from(v.data, (x) => x * k) };
  if (bias !== null && bias.data.length !== outF) {
    bias = {
      dims: [outF],
      dtype: "float32",
      data: Float32Array.from({ length: outF }, (_, k) => bias!.data[bias!.data.length === 1 ? 0 : k]),
    };
  }
  const path = b.layerPath(n);
  const m = new Linear(inF, outF, { bias: bias !== null, weightLayout: transB ? "out_in" : "in_out" });
  setParam(m, "weight", scaled(w, alpha));
  if (bias) setParam(m, "bias", { ...scaled(bias, beta), dims: [outF] });
  b.addLayer(path, m);
  // Gemm's A transposed ([K, M]): a layout op before the Linear
  const pre = transA
    ? (x: tf.Tensor) => F.transpose(x, [1, 0], { name: `${path.replace(/\./g, "_")}_transpose` })
    : undefined;
  b.steps.push(moduleStep(n, path, n.inputs[0], outputs, pre));
  return true;
}

function planBatchNorm(b: Builder, i: number): void {
  const n = b.node(i);
  const [scale, shift, mean, variance] = [1, 2, 3, 4].map((k) =>
    weightOf(b, n, k, ["scale", "bias", "mean", "variance"][k - 1]),
  );
  const m = new BatchNorm2d(scale.data.length, attrs(n).attr("epsilon", 1e-5));
  setParam(m, "weight", scale);
  setParam(m, "bias", shift);
  setParam(m, "running_mean", mean);
  setParam(m, "running_var", variance);
  const path = b.layerPath(n);
  b.addLayer(path, m);
  // BatchNorm1d's (N, C) and (N, C, L) run as (N, C, 1, 1) and (N, C, 1, L); the step remembers the shape it was given
  let shape: number[] = [];
  const pre = (x: tf.Tensor) => {
    shape = x.shape.slice();
    const [bn, c] = shape;
    return x.rank === 2 ? tf.reshape(x, [bn, c, 1, 1]) : to2d(x);
  };
  b.steps.push(
    moduleStep(n, path, n.inputs[0], [n.outputs[0]], pre, (y) => (shape.length === 4 ? y : tf.reshape(y, shape))),
  );
}

function layerNormModule(
  b: Builder,
  n: OnnxNode,
  gamma: ConstValue,
  beta: ConstValue | null,
  eps: number,
  input: string,
  outputs: string[],
): void {
  const c = gamma.data.length;
  const m = new LayerNorm(c, eps);
  setParam(m, "weight", { ...gamma, dims: [c] });
  setParam(m, "bias", beta ? { ...beta, dims: [c] } : { data: new Float32Array(c), dims: [c], dtype: "float32" });
  const path = b.layerPath(n);
  b.addLayer(path, m);
  b.steps.push(moduleStep(n, path, input, outputs));
}

/** ReduceMean → Sub → Pow 2 → ReduceMean → Add eps → Sqrt → Div → Mul γ → Add β over the last axis: one LayerNorm. */
function planDecomposedLayerNorm(b: Builder, i: number): boolean {
  const m1 = b.node(i);
  const x = m1.inputs[0];
  const next = (value: string, type: string) => {
    const cs = (b.consumers.get(value) ?? []).filter((k) => b.node(k).opType === type);
    return cs.length === 1 ? cs[0] : undefined;
  };
  const sub = next(m1.outputs[0], "Sub");
  if (sub === undefined || b.node(sub).inputs[0] !== x) return false;
  const d = b.node(sub).outputs[0];
  const pow = next(d, "Pow");
  const div = next(d, "Div");
  if (pow === undefined || div === undefined) return false;
  const two = b.staticValue(b.node(pow).inputs[1]);
  if (!two || two.data[0] !== 2) return false;
  const m2 = next(b.node(pow).outputs[0], "ReduceMean");
  if (m2 === undefined) return false;
  const add = next(b.node(m2).outputs[0], "Add");
  if (add === undefined) return false;
  const eps = b.staticValue(b.node(add).inputs[1]);
  const sqrt = next(b.node(add).outputs[0], "Sqrt");
  if (!eps || sqrt === undefined || b.node(div).inputs[1] !== b.node(sqrt).outputs[0]) return false;
  const mul = b.soleConsumer(b.node(div).outputs[0]);
  if (mul === undefined || b.node(mul).opType !== "Mul") return false;
  const gamma = b.staticValue(b.node(mul).inputs.find((v) => v !== b.node(div).outputs[0]) ?? "");
  if (!gamma) return false;
  const badd = b.soleConsumer(b.node(mul).outputs[0]);
  const beta =
    badd !== undefined && b.node(badd).opType === "Add"
      ? b.staticValue(b.node(badd).inputs.find((v) => v !== b.node(mul).outputs[0]) ?? "")
      : null;
  const last = beta && badd !== undefined ? badd : mul;
  [i, sub, pow, m2, add, sqrt, div, mul, ...(beta && badd !== undefined ? [badd] : [])].forEach((k) => b.done.add(k));
  layerNormModule(b, m1, gamma, beta, eps.data[0], x, b.node(last).outputs);
  return true;
}

/** Div(x, √2) → Erf → Add 1 → Mul x → Mul ½ (either Mul order): GELU. */
/** The nodes of x · ½ · (1 + erf(x / √2)) around an Erf (either multiplication order), or null. */
function matchGelu(b: Builder, i: number): { x: string; last: number; members: number[] } | null {
  const erf = b.node(i);
  const di = b.producer.get(erf.inputs[0]);
  if (di === undefined || b.node(di).opType !== "Div") return null;
  const x = b.node(di).inputs[0];
  const r2 = b.staticValue(b.node(di).inputs[1]);
  if (!r2 || !near(r2.data[0], Math.SQRT2)) return null;
  const ai = b.soleConsumer(erf.outputs[0]);
  if (ai === undefined || b.node(ai).opType !== "Add") return null;
  const m1 = b.soleConsumer(b.node(ai).outputs[0]);
  if (m1 === undefined || b.node(m1).opType !== "Mul") return null;
  const other = b.node(m1).inputs.find((v) => v !== b.node(ai).outputs[0]) ?? "";
  if (other !== x) {
    // x·½ first, then ·(1 + erf)
    const hi = b.producer.get(other);
    if (hi === undefined || b.node(hi).opType !== "Mul" || !b.node(hi).inputs.includes(x)) return null;
    return { x, last: m1, members: [hi, di, i, ai, m1] };
  }
  const m2 = b.soleConsumer(b.node(m1).outputs[0]);
  const half =
    m2 === undefined ? null : b.staticValue(b.node(m2).inputs.find((v) => v !== b.node(m1).outputs[0]) ?? "");
  if (m2 === undefined || b.node(m2).opType !== "Mul" || !half || !near(half.data[0], 0.5)) return null;
  return { x, last: m2, members: [di, i, ai, m1, m2] };
}

/**
 * Erf-GELU → one GELU op, planned at the pattern's first node in graph order (the Div, or x·½;
 * see geluStarts), so no part of it runs as an op of its own.
 */
function planGelu(b: Builder, erfIndex: number): void {
  const m = matchGelu(b, erfIndex) as NonNullable<ReturnType<typeof matchGelu>>;
  m.members.forEach((k) => b.done.add(k));
  const erf = b.node(erfIndex);
  const { path, opName } = nodeNames(erf.name, b.paths, erf.outputs[0], b.ownOps);
  const ctx = contextOf({ ...erf, opType: "GELU" }, b.g.opset, path, opName === "erf" ? "gelu" : opName);
  b.steps.push(
    patternStep(b.node(m.last), ctx, [m.x], (ins, raw) => [
      raw
        ? tf.mul(tf.mul(ins[0], 0.5), tf.add(1, tf.erf(tf.div(ins[0], Math.SQRT2))))
        : F.gelu(ins[0], { name: ctx.opName }),
    ]),
  );
}

/** For each Erf-GELU pattern: its first node in graph order → its Erf. */
function geluStarts(b: Builder): Map<number, number> {
  const starts = new Map<number, number>();
  b.g.nodes.forEach((n, i) => {
    if (n.opType !== "Erf") return;
    const m = matchGelu(b, i);
    if (m) starts.set(Math.min(...m.members), i);
  });
  return starts;
}

/**
 * x · Sigmoid(x) → SiLU and x · HardSigmoid(x) (PyTorch's 1/6, 1/2) → HardSwish, planned at the
 * gate (it comes before the Mul in graph order, so neither runs as an op of its own).
 */
function planGatedActivation(b: Builder, gi: number): boolean {
  const gate = b.node(gi);
  const i = b.soleConsumer(gate.outputs[0]);
  if (i === undefined) return false;
  const mul = b.node(i);
  if (mul.opType !== "Mul") return false;
  const x = gate.inputs[0];
  const other = mul.inputs[0] === gate.outputs[0] ? mul.inputs[1] : mul.inputs[0];
  if (other !== x) return false;
  const hs =
    gate.opType === "HardSigmoid" &&
    near(attrs(gate).attr("alpha", 0.2), 1 / 6) &&
    near(attrs(gate).attr("beta", 0.5), 0.5);
  if (!hs && gate.opType !== "Sigmoid") return false;
  b.done.add(gi);
  b.done.add(i);
  const { path, opName } = nodeNames(mul.name, b.paths, mul.outputs[0], b.ownOps);
  const ctx = contextOf(mul, b.g.opset, path, hs ? "hardswish" : opName === "mul" ? "silu" : opName);
  b.steps.push(
    patternStep(mul, ctx, [x], (ins, raw) => [
      raw
        ? tf.mul(ins[0], hs ? tf.div(tf.clipByValue(tf.add(ins[0], 3), 0, 6), 6) : tf.sigmoid(ins[0]))
        : hs
          ? F.hardswish(ins[0], { name: ctx.opName })
          : F.silu(ins[0], { name: ctx.opName }),
    ]),
  );
  return true;
}

function patternStep(
  out: OnnxNode,
  ctx: ReturnType<typeof contextOf>,
  inputs: string[],
  fn: (ins: tf.Tensor[], raw: boolean) => tf.Tensor[],
): PlanStep {
  return {
    node: out.name,
    inputs,
    outputs: out.outputs,
    run(root, ins, allConst) {
      const xs = ins as tf.Tensor[];
      if (allConst) return fn(xs, true);
      const scope = root.moduleAt(ctx.path);
      return scope instanceof OnnxScope ? scope.inScope(() => fn(xs, false)) : fn(xs, false);
    },
  };
}

function matmulStep(b: Builder, n: OnnxNode): PlanStep {
  const { path, opName } = nodeNames(n.name, b.paths, n.outputs[0], b.ownOps);
  const ctx = contextOf(n, b.g.opset, path, opName);
  return patternStep(n, ctx, n.inputs, (ins, raw) => [
    raw ? tf.matMul(ins[0], ins[1]) : F.matmul(ins[0], ins[1], { name: ctx.opName }),
  ]);
}

/** Every op type the graph uses that quantbook cannot import: one error listing them all. */
function checkSupported(g: OnnxGraph): void {
  const bad = unsupportedOps(g, new Set(handledOpTypes()));
  if (bad.size === 0) return;
  const lines = [...bad].map(
    ([t, names]) => `${t} ×${names.length} (${names.slice(0, 3).join(", ")}${names.length > 3 ? ", …" : ""})`,
  );
  throw errors.unsupported(
    `loadOnnx: ${g.file}`,
    `${bad.size} op type(s) — ${lines.join("; ")}`,
    "export at another opset (torch.onnx.export(..., opset_version=13)) so the exporter writes ops quantbook knows, or write that piece of the model with qb.F / qb.nn",
  );
}

/** Puts a layer at a dotted path, making container scopes; a path under a layer is flattened. */
function place(root: OnnxGraphModule, path: string, m: Module): void {
  const segs = path.split(".");
  let holder: Record<string, unknown> = root as unknown as Record<string, unknown>;
  for (let k = 0; k < segs.length - 1; k++) {
    const next = holder[segs[k]];
    if (next === undefined) holder[segs[k]] = new OnnxScope();
    else if (!(next instanceof OnnxScope)) {
      holder[segs.slice(k).join("_")] = m;
      return;
    }
    holder = holder[segs[k]] as Record<string, unknown>;
  }
  holder[segs[segs.length - 1]] = m;
}

function ensureScope(root: OnnxGraphModule, path: string): void {
  if (path === "") return;
  let holder: Record<string, unknown> = root as unknown as Record<string, unknown>;
  for (const seg of path.split(".")) {
    if (holder[seg] === undefined) holder[seg] = new OnnxScope();
    if (!(holder[seg] instanceof OnnxScope)) return;
    holder = holder[seg] as Record<string, unknown>;
  }
}

/**
 * Puts the nodes in dependency order (float16 converters append their Casts at the end; onnxruntime
 * accepts such files), keeping the file's order wherever it already works. A real cycle is an error
 * naming the nodes on it.
 */
export function sortNodes(g: OnnxGraph): void {
  const known = new Set<string>(["", ...g.initializers.keys(), ...g.inputs.map((i) => i.name)]);
  const waiting = new Map<string, number[]>();
  const missing = g.nodes.map((n) => new Set(n.inputs.filter((x) => !known.has(x))));
  const producers = new Set(g.nodes.flatMap((n) => n.outputs));
  const order: number[] = [];
  const ready: number[] = [];
  missing.forEach((m, i) => {
    for (const x of m) {
      if (!producers.has(x))
        m.delete(x); // produced nowhere: the handler that reads it reports it
      else waiting.set(x, [...(waiting.get(x) ?? []), i]);
    }
    if (m.size === 0) ready.push(i);
  });
  if (ready.length === g.nodes.length) return;
  // smallest index first: the file's own order where dependencies allow
  const heap = ready.sort((a, b) => a - b);
  while (heap.length > 0) {
    const i = heap.shift() as number;
    order.push(i);
    for (const o of g.nodes[i].outputs) {
      for (const j of waiting.get(o) ?? []) {
        missing[j].delete(o);
        if (missing[j].size === 0) {
          const at = heap.findIndex((k) => k > j);
          heap.splice(at === -1 ? heap.length : at, 0, j);
        }
      }
      waiting.delete(o);
    }
  }
  if (order.length < g.nodes.length) {
    const stuck = g.nodes.filter((_, i) => missing[i].size > 0);
    throw errors.invalidArgument(
      `loadOnnx (${g.file})`,
      `the graph has a cycle: ${stuck.length} nodes wait on each other (${stuck
        .slice(0, 4)
        .map((n) => `${n.name || n.opType} needs ${[...missing[g.nodes.indexOf(n)]].join(", ")}`)
        .join("; ")}${stuck.length > 4 ? "; ..." : ""})`,
      "a valid ONNX graph is acyclic; check the exporter, or run onnx.checker.check_model on the file",
    );
  }
  g.nodes = order.map((i) => g.nodes[i]);
}

/** Builds the module; on any error everything allocated so far is disposed. */
export function buildOnnxModule(g: OnnxGraph, opts: LoadOnnxOptions = {}): OnnxGraphModule {
  fixInputs(g, opts.constantInputs);
  foldIfs(g, (graph) => {
    const evaluator = new Builder(graph);
    return (name) => evaluator.staticValue(name);
  });
  checkSupported(g);
  const transposesRemoved = cancelTransposes(g);
  sortNodes(g);
  const b = new Builder(g);
  const created: Module[] = [];
  try {
    const gelus = geluStarts(b);
    g.nodes.forEach((n, i) => {
      if (b.done.has(i)) return;
      const t = n.opType;
      const gelu = gelus.get(i);
      if (gelu !== undefined) return planGelu(b, gelu);
      if (t === "Conv" || t === "ConvTranspose") return planConv(b, i);
      if ((t === "Gemm" || t === "MatMul") && planLinear(b, i)) return;
      if (t === "BatchNormalization") return planBatchNorm(b, i);
      if (t === "LSTM" || t === "GRU" || t === "RNN") return planRecurrent(b, n);
      if (t === "LayerNormalization") {
        const a = attrs(n);
        if (a.attr("axis", -1) !== -1)
          throw errors.unsupported(
            `loadOnnx: ${n.name}`,
            "LayerNormalization over more than the last axis",
            "normalise over the last axis",
          );
        return layerNormModule(
          b,
          n,
          weightOf(b, n, 1, "scale"),
          n.inputs[2] ? weightOf(b, n, 2, "bias") : null,
          a.attr("epsilon", 1e-5),
          n.inputs[0],
          [n.outputs[0]],
        );
      }
      if (t === "ReduceMean" && planDecomposedLayerNorm(b, i)) return;
      if ((t === "Sigmoid" || t === "HardSigmoid") && planGatedActivation(b, i)) return;
      if (t === "MatMul") {
        b.steps.push(matmulStep(b, n));
        return;
      }
      if (t === "Gemm")
        throw errors.unsupported(
          `loadOnnx: ${n.name}`,
          "a Gemm whose B is not a constant 2-D weight",
          "export the projection as nn.Linear",
        );
      const { path, opName } = nodeNames(n.name, b.paths, n.outputs[0] ?? "", b.ownOps);
      n.inputs.forEach((inp) => {
        if (!b.consts.has(inp)) return;
        b.usedConsts.add(inp);
        if (!movesValues(n.opType)) b.dataConsts.add(inp);
      });
      b.steps.push(handlerStep(contextOf(n, g.opset, path, opName)));
    });
    // constants read by steps become root fields: float ones parameters named after the initializer
    const constFields: Record<string, string> = {};
    const info = {
      file: g.file,
      opset: g.opset,
      producer: g.producer,
      nodes: g.nodes.length,
      transposesRemoved,
      inputs: g.inputs,
      outputs: g.outputs,
    };
    const typeOf = new Map(g.nodes.map((n) => [n.name, n.opType]));
    for (const step of b.steps) step.opType ??= typeOf.get(step.node) ?? "";
    const root = new OnnxGraphModule(info, b.steps, constFields);
    created.push(root);
    for (const [path, m] of b.layers) {
      created.push(m);
      place(root, path, m);
    }
    for (const n of g.nodes) ensureScope(root, nodeNames(n.name, b.paths, n.outputs[0] ?? "").path);
    const holder = root as unknown as Record<string, tf.Tensor>;
    for (const name of b.usedConsts) {
      const v = b.consts.get(name) as ConstValue;
      const field = name in holder ? `const:${name}` : name;
      // float tensors (embeddings, biases) are parameters; scalars and integer / bool shape constants are not
      holder[field] =
        v.dtype === "float32" && v.data.length > 1 && b.dataConsts.has(name)
          ? tf.tidy(() => tf.variable(constTensor(v), false))
          : constTensor(v);
      constFields[name] = field;
    }
    const depth = scopeDepth();
    try {
      checkRuns(root, g, opts);
    } catch (e) {
      // a kernel stopped mid-way (a trap on inconsistent shapes) may leave tensor scopes open
      repairEngine(depth);
      throw carriesContext(e)
        ? e
        : errors.badFile(
            "loadOnnx",
            g.file,
            `the graph does not run on its declared input shapes: ${(e as Error).message}`,
            e,
          );
    }
    return root;
  } catch (e) {
    // layers made so far (placed or not) and the root: nothing of a failed load stays allocated
    new Set([...created, ...b.layers.map(([, m]) => m)]).forEach((m) => m.dispose());
    throw e;
  }
}

/** With every input shape known, runs the graph once on zeros so a problem shows at load. */
function checkRuns(root: OnnxGraphModule, g: OnnxGraph, opts: LoadOnnxOptions): void {
  const given = opts.inputShapes;
  const shapes = g.inputs.map((inp, i) => {
    const s = Array.isArray(given) ? given[i] : given?.[inp.name];
    if (s !== undefined) {
      if (s.length !== inp.dims.length)
        throw errors.shapeMismatch(
          `loadOnnx: ${g.file}: input '${inp.name}'`,
          `inputShapes gives [${s}]`,
          `${inp.dims.length} dims ([${inp.dims}])`,
        );
      return s;
    }
    return inp.dims.every((d) => typeof d === "number" && d > 0) ? (inp.dims as number[]) : null;
  });
  if (shapes.some((s) => s === null)) return; // dynamic dims: bound by the example input at prepare
  tf.tidy(() => {
    root.forward(...shapes.map((s) => tf.zeros(s as number[])));
  });
}

/**
 * Loads an ONNX model (a path, or its bytes) as a qb.nn.Module.
 *
 * ```ts
 * const model = await qb.io.loadOnnx("resnet18.onnx");
 * const calib = qb.prepare(model.eval(), x, { qconfigSetter: [qb.qconfig.calibration8bitWeight16bitActQconfigSetter] });
 * ```
 */
export async function loadOnnx(source: string | Uint8Array, opts: LoadOnnxOptions = {}): Promise<OnnxGraphModule> {
  await ensureBackend();
  let bytes: Uint8Array;
  const file = typeof source === "string" ? source : "<bytes>";
  if (typeof source === "string") {
    try {
      bytes = await readFile(source);
    } catch (e) {
      throw errors.badFile("loadOnnx", source, `cannot read it: ${(e as Error).message}`, e);
    }
  } else bytes = source;
  const g = readOnnx(bytes, file);
  return buildOnnxModule(g, opts);
}
