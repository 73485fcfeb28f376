/**
 * From ONNX nodes to the steps an OnnxGraphModule runs: each node (or fused pattern) becomes a
 * step that computes its outputs either with plain tfjs (all inputs constant: shape plumbing) or
 * with the registry's quantization-aware ops, named after the node's module path.
 */
import * as tf from "@tensorflow/tfjs";
import * as F from "../../nn/functional";
import type { Module } from "../../nn/module";
import { runOp } from "../../nn/op";
import { errors } from "../../messages";
import {
  depthToSpace as depthToSpaceRaw,
  padTensor,
  slice as sliceRaw,
  spaceToDepth as spaceToDepthRaw,
} from "../../ops/layout";
import {
  instanceNorm as instanceNormRaw,
  logSoftmax as logSoftmaxRaw,
  softmax as softmaxRaw,
} from "../../ops/activation";
import { opDef } from "../../ops";
import {
  COORDINATE_MODES,
  gridSample as gridSampleRaw,
  NEAREST_MODES,
  resizeBilinear,
  resizeNearest,
  type CoordinateMode,
  type GridPadding,
  type GridSampleMode,
  type NearestMode,
} from "../../ops/resize";
import { OnnxScope, type OnnxGraphModule } from "./graphModule";
import type { AttrValue, OnnxNode } from "./proto";
import type { OpType } from "../../ops/opTypes";

export interface PlanStep {
  node: string;
  /** The node's ONNX op type (the first node's, for a fused pattern). */
  opType?: string;
  inputs: string[];
  outputs: string[];
  /** Outputs are constants whatever the inputs (Shape, Size: they read only the input's shape). */
  constOutputs?: boolean;
  /** `constInputs`: which inputs are constants in this run (initializers or folded from them). */
  run(root: OnnxGraphModule, ins: (tf.Tensor | undefined)[], allConst: boolean, constInputs?: boolean[]): tf.Tensor[];
}

/** What a handler sees of its node. */
export interface NodeContext {
  node: OnnxNode;
  opset: number;
  attr(name: string, fallback: number): number;
  attr(name: string, fallback: string): string;
  attr(name: string, fallback: number[]): number[];
  attr<T extends AttrValue>(name: string, fallback: T): T;
  /** Scope path and op name for quantized ops (null: the scope module's own op, named by its path). */
  path: string;
  opName: string | null;
}

type Ins = (tf.Tensor | undefined)[];
/** A handler: raw (all inputs constant) or quantized computation of a node's outputs. */
type Handler = (ctx: NodeContext, ins: Ins, raw: boolean, constInputs?: boolean[]) => tf.Tensor[];

const ints = (t: tf.Tensor | undefined): number[] => (t === undefined ? [] : Array.from(t.dataSync(), Number));
const need = (ins: Ins, i: number, ctx: NodeContext): tf.Tensor => {
  const t = ins[i];
  if (t === undefined)
    throw errors.corruptData(
      `${ctx.node.name} (${ctx.node.opType}): input ${i} ('${ctx.node.inputs[i] ?? ""}') is missing`,
    );
  return t;
};
const axisOf = (a: number, rank: number) => (a < 0 ? a + rank : a);
const named = (ctx: NodeContext) => ({ name: ctx.opName });
const scalarOf = (t: tf.Tensor): number | null => (t.size === 1 ? t.dataSync()[0] : null);

/** a op b, with a constant scalar operand passed as a number (no tensor input of its own). */
function binary(
  raw: (a: tf.Tensor, b: tf.Tensor) => tf.Tensor,
  q: (a: tf.Tensor | number, b: tf.Tensor | number, o: { name: string | null }) => tf.Tensor,
) {
  return (ctx: NodeContext, ins: Ins, isRaw: boolean, constInputs: boolean[] = []): tf.Tensor[] => {
    const a = need(ins, 0, ctx);
    const b = need(ins, 1, ctx);
    if (isRaw) return [raw(a, b)];
    const ca = constInputs[0] ? scalarOf(a) : null;
    const cb = constInputs[1] ? scalarOf(b) : null;
    return [q(ca ?? a, cb ?? b, named(ctx))];
  };
}

/** The registry entry's own float compute, for an op whose inputs are all constants (no second copy of its formula here). */
function floatCompute(type: OpType, x: tf.Tensor, attrs: Record<string, unknown> = {}): tf.Tensor {
  return opDef(type, "loadOnnx").compute([x], undefined, [], attrs);
}

function unary(raw: (t: tf.Tensor) => tf.Tensor, q: (t: tf.Tensor, o: { name: string | null }) => tf.Tensor): Handler {
  return (ctx, ins, isRaw) => [isRaw ? raw(need(ins, 0, ctx)) : q(need(ins, 0, ctx), named(ctx))];
}

/**
 * Max / Min over any number of inputs, as a chain of binary ops (`_1`, `_2`, ... after the first).
 * A one-element constant operand (tf2onnx writes `Max(LeakyRelu(x), c)` with c of shape [1,1,1,1])
 * becomes a bound of a Clip: the clip keeps its input's scale and rounds the bound to its grid, as
 * the chip does, instead of leaving an unquantized float operand the chip refuses.
 */
function variadic(
  raw: (a: tf.Tensor, b: tf.Tensor) => tf.Tensor,
  q: (a: tf.Tensor, b: tf.Tensor, o: { name: string | null }) => tf.Tensor,
  bound?: "min" | "max",
): Handler {
  return (ctx, ins, isRaw, constInputs = []) => {
    let xs = ins.filter((t): t is tf.Tensor => t !== undefined);
    let clipAt: number | null = null;
    if (!isRaw && bound !== undefined) {
      const rank = Math.max(...xs.map((t) => t.rank));
      const isBound = (t: tf.Tensor) =>
        constInputs[ins.indexOf(t)] === true &&
        t.size === 1 &&
        t.dtype === "float32" &&
        xs.some((o) => o !== t && o.rank === rank) &&
        t.rank <= rank;
      const bounds = xs.filter(isBound);
      if (bounds.length > 0 && bounds.length < xs.length) {
        const values = bounds.map((t) => t.dataSync()[0]);
        clipAt = bound === "min" ? Math.max(...values) : Math.min(...values);
        xs = xs.filter((t) => !bounds.includes(t));
      }
    }
    if (xs.length === 1) {
      if (isRaw) return [tf.clone(xs[0])];
      return [
        clipAt === null
          ? F.clip(xs[0], null, null, named(ctx))
          : bound === "min"
            ? F.clip(xs[0], clipAt, null, named(ctx))
            : F.clip(xs[0], null, clipAt, named(ctx)),
      ];
    }
    let acc = xs[0];
    xs.slice(1).forEach((x, k) => {
      acc = isRaw
        ? raw(acc, x)
        : q(acc, x, { name: k === 0 ? ctx.opName : `${ctx.opName ?? ctx.node.opType.toLowerCase()}_${k}` });
    });
    if (clipAt !== null) {
      const o = { name: `${ctx.opName ?? ctx.node.opType.toLowerCase()}_clip` };
      acc = bound === "min" ? F.clip(acc, clipAt, null, o) : F.clip(acc, null, clipAt, o);
    }
    return [acc];
  };
}

/** A comparison or logic op: computed as is (on shapes, token ids and masks it is never quantized). */
function logic(fn: (a: tf.Tensor, b: tf.Tensor) => tf.Tensor): Handler {
  return (ctx, ins) => [fn(need(ins, 0, ctx), need(ins, 1, ctx))];
}

/** An op quantbook computes only on constants or integer data (shapes, indices); on a float activation it says so. */
function constantOnly(fn: (x: tf.Tensor) => tf.Tensor): Handler {
  return (ctx, ins, raw) => {
    const x = need(ins, 0, ctx);
    if (!raw && x.dtype === "float32") {
      throw errors.unsupported(
        `loadOnnx: ${ctx.node.name} (${ctx.node.opType})`,
        `${ctx.node.opType} of a float activation`,
        "it has no quantized form here; keep it out of the exported graph or write the piece with qb.F",
      );
    }
    return [fn(x)];
  };
}

/** (N, C, L) as (N, C, 1, L), and back: 1-D nodes run as their 2-D forms; reshapes need no op. */
export function to2d(x: tf.Tensor): tf.Tensor {
  const [n, c, l] = x.shape as number[];
  return x.rank === 3 ? tf.reshape(x, [n, c, 1, l]) : x;
}
export function to1d(y: tf.Tensor): tf.Tensor {
  const [n, c, , l] = y.shape as number[];
  return tf.reshape(y, [n, c, l]);
}

/** A 1-D node's attribute in its 2-D form over (1, L): kernel, strides, dilations → [1, v]; output_padding → [0, v]; output_shape → [1, v]; pads [b, e] → [0, b, 0, e]. */
export function lift1dAttr(name: string, v: unknown): unknown {
  if (!Array.isArray(v)) return v;
  if (name === "pads" && v.length === 2) return [0, v[0], 0, v[1]];
  if (
    (name === "kernel_shape" || name === "strides" || name === "dilations" || name === "output_shape") &&
    v.length === 1
  )
    return [1, v[0]];
  if (name === "output_padding" && v.length === 1) return [0, v[0]];
  return v;
}

/**
 * A pooling node on (N, C, H, W) or, as (N, C, 1, L), on (N, C, L): `pair(name, fill)` reads a
 * 2-D attribute or lifts a 1-D one, and `pads` comes as [top, left, bottom, right].
 */
function pool1dOr2d(
  body: (
    ctx: NodeContext,
    x: tf.Tensor,
    pair: (name: string, fill: number) => [number, number],
    pads: number[],
  ) => tf.Tensor,
): Handler {
  return (ctx, ins) => {
    const x = need(ins, 0, ctx);
    const pair = (name: string, fill: number) => lift1dAttr(name, ctx.attr(name, [fill, fill])) as [number, number];
    const pads = lift1dAttr("pads", ctx.attr("pads", x.rank === 3 ? [0, 0] : [0, 0, 0, 0])) as number[];
    const y = body(ctx, to2d(x), pair, pads);
    return [x.rank === 3 ? to1d(y) : y];
  };
}

/** Σ x² over the node's axes, and its square root for ReduceL2. */
function sumSquares(ctx: NodeContext, ins: Ins, raw: boolean, root: boolean): tf.Tensor {
  const x = need(ins, 0, ctx);
  const axes = reduceAxes(ctx, ins, x.rank);
  const keep = ctx.attr("keepdims", 1) !== 0;
  if (raw) {
    const ss = tf.sum(tf.square(x), axes, keep);
    return root ? tf.sqrt(ss) : ss;
  }
  const base = ctx.opName ?? (root ? "reduce_l2" : "reduce_sum_square");
  const ss = F.sum(F.mul(x, x, { name: `${base}_square` }), axes, keep, { name: root ? `${base}_sum` : base });
  return root ? F.sqrt(ss, { name: base }) : ss;
}

/**
 * Einsum of one or two operands as quantbook ops: a sum over indices only one side has, a transpose
 * to [batch, free, contracted], one batched matmul, a transpose to the output's order (reshapes
 * in between need no op). Ellipses and repeated indices (diagonals) are refused.
 */
function einsum(ctx: NodeContext, ins: Ins, raw: boolean): tf.Tensor[] {
  const where = `loadOnnx: ${ctx.node.name} (Einsum)`;
  const eq = (ctx.attr("equation", "") as string).replace(/\s/g, "");
  const [lhs, given] = eq.split("->");
  const terms = lhs.split(",");
  const xs = ins.filter((t): t is tf.Tensor => t !== undefined);
  if (eq.includes("..."))
    throw errors.unsupported(where, `the equation '${eq}' with an ellipsis`, "write the indices out");
  if (terms.some((t) => new Set(t).size !== t.length))
    throw errors.unsupported(
      where,
      `the equation '${eq}' with a repeated index (a diagonal)`,
      "take the diagonal with Gather or qb.F",
    );
  if (terms.length > 2 || terms.length !== xs.length)
    throw errors.unsupported(
      where,
      `the equation '${eq}' over ${xs.length} operands`,
      "one or two operands are supported",
    );
  const counts = new Map<string, number>();
  for (const c of terms.join("")) counts.set(c, (counts.get(c) ?? 0) + 1);
  // implicit output: the indices that appear once, in alphabetical order
  const out =
    given ??
    [...counts]
      .filter(([, n]) => n === 1)
      .map(([c]) => c)
      .sort()
      .join("");
  const base = ctx.opName ?? "einsum";
  const name = (suffix: string) => ({ name: `${base}_${suffix}` });
  const sum = (t: tf.Tensor, axes: number[], suffix: string) =>
    axes.length === 0 ? t : raw ? tf.sum(t, axes) : F.sum(t, axes, false, name(suffix));
  const permute = (t: tf.Tensor, from: string, to: string, suffix: string) => {
    const perm = [...to].map((c) => from.indexOf(c));
    return perm.every((p, i) => p === i) ? t : raw ? tf.transpose(t, perm) : F.transpose(t, perm, name(suffix));
  };
  // indices a term has alone and the output lacks are summed first
  const reduceAlone = (t: tf.Tensor, term: string, other: string, suffix: string): [tf.Tensor, string] => {
    const gone = [...term].filter((c) => !other.includes(c) && !out.includes(c));
    return [
      sum(
        t,
        gone.map((c) => term.indexOf(c)),
        suffix,
      ),
      [...term].filter((c) => !gone.includes(c)).join(""),
    ];
  };
  if (xs.length === 1) {
    const [y, kept] = reduceAlone(xs[0], terms[0], "", "sum");
    return [permute(y, kept, out, "transpose")];
  }
  const [a, ta] = reduceAlone(xs[0], terms[0], terms[1], "sum_a");
  const [b, tb] = reduceAlone(xs[1], terms[1], terms[0], "sum_b");
  const batch = [...out].filter((c) => ta.includes(c) && tb.includes(c));
  const contract = [...ta].filter((c) => tb.includes(c) && !out.includes(c));
  const left = [...ta].filter((c) => !tb.includes(c));
  const right = [...tb].filter((c) => !ta.includes(c));
  const size = (t: tf.Tensor, term: string, cs: string[]) =>
    cs.reduce((p, c) => p * (t.shape[term.indexOf(c)] as number), 1);
  const dims = (t: tf.Tensor, term: string, cs: string[]) => cs.map((c) => t.shape[term.indexOf(c)] as number);
  const a3 = tf.reshape(permute(a, ta, [...batch, ...left, ...contract].join(""), "transpose_a"), [
    size(a, ta, batch),
    size(a, ta, left),
    size(a, ta, contract),
  ]);
  const b3 = tf.reshape(permute(b, tb, [...batch, ...contract, ...right].join(""), "transpose_b"), [
    size(b, tb, batch),
    size(b, tb, contract),
    size(b, tb, right),
  ]);
  const prod = raw ? tf.matMul(a3, b3) : F.matmul(a3, b3, { name: ctx.opName });
  const y = tf.reshape(prod, [...dims(a, ta, batch), ...dims(a, ta, left), ...dims(b, tb, right)]);
  return [permute(y, [...batch, ...left, ...right].join(""), out, "transpose")];
}

/** Axes of a Reduce* node: attribute before opset 13 (18 for all but ReduceSum), second input after. */
function reduceAxes(ctx: NodeContext, ins: Ins, rank: number): number[] {
  const fromInput = ins[1] !== undefined ? ints(ins[1]) : null;
  const axes = fromInput ?? (ctx.attr("axes", null as number[] | null) as number[] | null);
  return axes === null || axes.length === 0
    ? Array.from({ length: rank }, (_, i) => i)
    : axes.map((a) => axisOf(a, rank));
}

function reduce(kind: "mean" | "sum" | "max"): Handler {
  return (ctx, ins, raw) => {
    const x = need(ins, 0, ctx);
    const axes = reduceAxes(ctx, ins, x.rank);
    const keep = ctx.attr("keepdims", 1) !== 0;
    if (raw) return [(kind === "mean" ? tf.mean : kind === "sum" ? tf.sum : tf.max)(x, axes, keep)];
    const f = kind === "mean" ? F.mean : kind === "sum" ? F.sum : F.max;
    return [f(x, axes, keep, named(ctx))];
  };
}

/** Slice's starts / ends / axes / steps: attributes before opset 10, inputs after. */
function sliceArgs(ctx: NodeContext, ins: Ins, rank: number) {
  const starts = ctx.opset < 10 ? (ctx.attr("starts", [] as number[]) as number[]) : ints(ins[1]);
  const ends = ctx.opset < 10 ? (ctx.attr("ends", [] as number[]) as number[]) : ints(ins[2]);
  const axesIn =
    ctx.opset < 10 ? (ctx.attr("axes", null as number[] | null) as number[] | null) : ins[3] ? ints(ins[3]) : null;
  const axes = (axesIn ?? starts.map((_, i) => i)).map((a) => axisOf(a, rank));
  const steps = ctx.opset < 10 ? starts.map(() => 1) : ins[4] ? ints(ins[4]) : starts.map(() => 1);
  return { starts, ends, axes, steps };
}

const pads2d = (pads: number[]): { sym: [number, number] | null; pad: number[] } => {
  // ONNX pads: [top, left, bottom, right]
  const [t, l, b, r] = pads.length === 4 ? pads : [0, 0, 0, 0];
  return t === b && l === r ? { sym: [t, l], pad: [] } : { sym: null, pad: [l, r, t, b] };
};

/** ONNX Div: integer operands divide with truncation (C semantics), as shape arithmetic needs. */
function divide(a: tf.Tensor, b: tf.Tensor): tf.Tensor {
  if (a.dtype !== "int32" || b.dtype !== "int32") return tf.div(a, b);
  const q = tf.div(tf.cast(a, "float32"), tf.cast(b, "float32"));
  return tf.cast(tf.where(tf.less(q, 0), tf.ceil(q), tf.floor(q)), "int32");
}

const HANDLERS: Record<string, Handler> = {
  Identity: (ctx, ins) => [need(ins, 0, ctx)],
  Dropout: (ctx, ins) => [need(ins, 0, ctx)],
  Add: binary(tf.add, F.add),
  Sub: binary(tf.sub, F.sub),
  Mul: binary(tf.mul, F.mul),
  Div: binary(divide, F.div),
  Relu: unary(tf.relu, F.relu),
  Sigmoid: unary(tf.sigmoid, F.sigmoid),
  Tanh: unary(tf.tanh, F.tanh),
  Exp: unary(tf.exp, F.exp),
  Sqrt: unary(tf.sqrt, F.sqrt),
  Reciprocal: unary(tf.reciprocal, F.reciprocal),
  Erf: (ctx, ins, raw) => {
    if (raw) return [tf.erf(need(ins, 0, ctx))];
    throw errors.unsupported(
      `loadOnnx: ${ctx.node.name}`,
      "an Erf outside the GELU pattern x·½·(1 + erf(x/√2))",
      "export GELU as one op (nn.GELU) or write the piece with qb.F",
    );
  },
  HardSwish: unary((t) => floatCompute("HardSwish", t), F.hardswish),
  HardSigmoid: (ctx, ins, raw) => {
    const alpha = ctx.attr("alpha", 0.2) as number;
    const beta = ctx.attr("beta", 0.5) as number;
    const x = need(ins, 0, ctx);
    return [
      raw ? floatCompute("HardSigmoid", x, { alpha, beta }) : F.hardsigmoid(x, { alpha, beta, name: ctx.opName }),
    ];
  },
  Abs: unary(tf.abs, F.abs),
  Neg: unary(tf.neg, F.neg),
  Log: unary(tf.log, F.log),
  Elu: (ctx, ins, raw) => {
    const alpha = ctx.attr("alpha", 1) as number;
    const x = need(ins, 0, ctx);
    return [raw ? floatCompute("ELU", x, { alpha }) : F.elu(x, alpha, named(ctx))];
  },
  // ONNX's Softplus is log(1 + e^x): PyTorch's with beta 1 (its threshold 20 changes nothing in float32)
  Softplus: unary(tf.softplus, (t, o) => F.softplus(t, o)),
  Mish: unary((t) => floatCompute("Mish", t), F.mish),
  PRelu: (ctx, ins, raw) => {
    const x = need(ins, 0, ctx);
    const slope = need(ins, 1, ctx);
    if (raw) return [tf.where(tf.greaterEqual(x, 0), x, tf.mul(x, slope))];
    // the slope broadcasts against x ([C, 1, 1], [C] or [1]); the op takes one slope per channel or one in all
    const perChannel = slope.size > 1 ? tf.reshape(slope, [slope.size]) : tf.reshape(slope, [1]);
    if (slope.size > 1 && (x.rank < 2 || slope.size !== x.shape[1])) {
      throw errors.unsupported(
        `loadOnnx: ${ctx.node.name} (PRelu)`,
        `a slope of shape [${slope.shape}] for an input of shape [${x.shape}]`,
        "use one slope per channel (dim 1) or a single slope",
      );
    }
    return [F.prelu(x, perChannel, named(ctx))];
  },
  Sum: variadic(tf.add, F.add),
  Einsum: einsum,
  Max: variadic(tf.maximum, F.maximum, "min"),
  Min: variadic(tf.minimum, F.minimum, "max"),
  LeakyRelu: (ctx, ins, raw) => {
    const a = ctx.attr("alpha", 0.01) as number;
    return [raw ? tf.leakyRelu(need(ins, 0, ctx), a) : F.leakyRelu(need(ins, 0, ctx), a, named(ctx))];
  },
  Clip: (ctx, ins, raw) => {
    const x = need(ins, 0, ctx);
    const min = ctx.opset < 11 ? (ctx.attr("min", -3.4e38) as number) : ins[1] ? (ints(ins[1])[0] ?? null) : null;
    const max = ctx.opset < 11 ? (ctx.attr("max", 3.4e38) as number) : ins[2] ? (ints(ins[2])[0] ?? null) : null;
    if (raw) return [tf.clipByValue(x, min ?? -3.4e38, max ?? 3.4e38)];
    return [F.clip(x, min, max, named(ctx))];
  },
  Pow: (ctx, ins, raw) => {
    const x = need(ins, 0, ctx);
    const e = need(ins, 1, ctx);
    if (raw) return [tf.pow(x, e)];
    const k = scalarOf(e);
    if (k === null)
      throw errors.unsupported(`loadOnnx: ${ctx.node.name}`, "Pow with a tensor exponent", "use a constant exponent");
    return [F.pow(x, k, named(ctx))];
  },
  Softmax: (ctx, ins, raw) => {
    const x = need(ins, 0, ctx);
    const axis = axisOf(ctx.attr("axis", ctx.opset < 13 ? 1 : -1) as number, x.rank);
    if (ctx.opset < 13 && axis !== x.rank - 1) {
      // before opset 13: softmax over the input flattened to [prod(:axis), prod(axis:)]
      const outer = x.shape.slice(0, axis).reduce((a, b) => a * b, 1);
      const flat = tf.reshape(x, [outer, -1]);
      const y = raw ? tf.softmax(flat) : F.softmax(flat, -1, named(ctx));
      return [tf.reshape(y, x.shape)];
    }
    return [raw ? softmaxRaw(x, axis) : F.softmax(x, axis, named(ctx))];
  },
  LogSoftmax: (ctx, ins, raw) => {
    const x = need(ins, 0, ctx);
    const axis = axisOf(ctx.attr("axis", ctx.opset < 13 ? 1 : -1) as number, x.rank);
    if (ctx.opset < 13 && axis !== x.rank - 1) {
      // before opset 13: over the input flattened to [prod(:axis), prod(axis:)]
      const flat = tf.reshape(x, [x.shape.slice(0, axis).reduce((a, b) => a * b, 1), -1]);
      return [tf.reshape(raw ? logSoftmaxRaw(flat, -1) : F.logSoftmax(flat, -1, named(ctx)), x.shape)];
    }
    return [raw ? logSoftmaxRaw(x, axis) : F.logSoftmax(x, axis, named(ctx))];
  },
  InstanceNormalization: (ctx, ins, raw) => {
    const [x, scale, bias] = [need(ins, 0, ctx), need(ins, 1, ctx), need(ins, 2, ctx)];
    const eps = ctx.attr("epsilon", 1e-5) as number;
    return [
      raw ? instanceNormRaw(x, [scale, bias], eps) : F.instanceNorm(x, { weight: scale, bias, eps, name: ctx.opName }),
    ];
  },
  GridSample: (ctx, ins, raw) => {
    const [x, grid] = [need(ins, 0, ctx), need(ins, 1, ctx)];
    const onnxMode = ctx.attr("mode", "bilinear") as string;
    const mode: GridSampleMode | null =
      onnxMode === "linear" || onnxMode === "bilinear" ? "bilinear" : onnxMode === "nearest" ? "nearest" : null;
    if (mode === null)
      throw errors.unsupported(
        `loadOnnx: ${ctx.node.name} (GridSample)`,
        `mode '${onnxMode}'`,
        "bilinear and nearest are supported",
      );
    const a = {
      mode,
      paddingMode: ctx.attr("padding_mode", "zeros") as GridPadding,
      alignCorners: ctx.attr("align_corners", 0) !== 0,
    };
    return [raw ? gridSampleRaw(x, grid, a) : F.gridSample(x, grid, { ...a, name: ctx.opName })];
  },
  DepthToSpace: (ctx, ins, raw) => {
    const x = need(ins, 0, ctx);
    const b = ctx.attr("blocksize", 2) as number;
    const mode = (ctx.attr("mode", "DCR") as string).toUpperCase() === "CRD" ? "CRD" : "DCR";
    return [raw ? depthToSpaceRaw(x, b, mode) : F.depthToSpace(x, b, mode, named(ctx))];
  },
  SpaceToDepth: (ctx, ins, raw) => {
    const x = need(ins, 0, ctx);
    const b = ctx.attr("blocksize", 2) as number;
    return [raw ? spaceToDepthRaw(x, b) : F.spaceToDepth(x, b, named(ctx))];
  },
  Tile: (ctx, ins, raw) => {
    const x = need(ins, 0, ctx);
    const reps = ints(need(ins, 1, ctx));
    return [raw ? tf.tile(x, reps) : F.tile(x, reps, named(ctx))];
  },
  ReduceMin: (ctx, ins, raw) => {
    const x = need(ins, 0, ctx);
    const axes = reduceAxes(ctx, ins, x.rank);
    const keep = ctx.attr("keepdims", 1) !== 0;
    return [raw ? tf.min(x, axes, keep) : F.min(x, axes, keep, named(ctx))];
  },
  // norms as their quantized parts: |x| or x·x, a sum, and a square root for L2 (F.normalize, face embeddings)
  ReduceL1: (ctx, ins, raw) => {
    const x = need(ins, 0, ctx);
    const axes = reduceAxes(ctx, ins, x.rank);
    const keep = ctx.attr("keepdims", 1) !== 0;
    const base = ctx.opName ?? "reduce_l1";
    return [raw ? tf.sum(tf.abs(x), axes, keep) : F.sum(F.abs(x, { name: `${base}_abs` }), axes, keep, { name: base })];
  },
  ReduceSumSquare: (ctx, ins, raw) => [sumSquares(ctx, ins, raw, false)],
  ReduceL2: (ctx, ins, raw) => [sumSquares(ctx, ins, raw, true)],
  ReduceMean: reduce("mean"),
  ReduceSum: reduce("sum"),
  ReduceMax: reduce("max"),
  GlobalAveragePool: (ctx, ins, raw) => {
    const x = need(ins, 0, ctx);
    const spatial = x.shape.map((_, i) => i).slice(2);
    if (raw) return [tf.mean(x, spatial, true)];
    return [x.rank === 3 ? F.mean(x, 2, true, named(ctx)) : F.adaptiveAvgPool2d(x, 1, named(ctx))];
  },
  GlobalMaxPool: (ctx, ins, raw) => {
    const x = need(ins, 0, ctx);
    const spatial = x.shape.map((_, i) => i).slice(2);
    return [raw ? tf.max(x, spatial, true) : F.max(x, spatial, true, named(ctx))];
  },
  MaxPool: pool1dOr2d((ctx, x, pair, pads) => {
    const p = pads2d(pads);
    const input = p.sym ? x : F.pad(x, p.pad, -3.4e38, { name: `${ctx.opName ?? "maxpool"}_pad` });
    return F.maxPool2d(input, pair("kernel_shape", 1), {
      stride: pair("strides", 1),
      padding: p.sym ?? [0, 0],
      ceilMode: ctx.attr("ceil_mode", 0) === 1,
      dilation: pair("dilations", 1),
      name: ctx.opName,
    });
  }),
  AveragePool: pool1dOr2d((ctx, x, pair, pads) => {
    const p = pads2d(pads);
    if (!p.sym)
      throw errors.unsupported(
        `loadOnnx: ${ctx.node.name}`,
        "AveragePool with asymmetric pads",
        "export with symmetric padding",
      );
    return F.avgPool2d(x, pair("kernel_shape", 1), {
      stride: pair("strides", 1),
      padding: p.sym,
      ceilMode: ctx.attr("ceil_mode", 0) === 1,
      countIncludePad: ctx.attr("count_include_pad", 0) === 1,
      name: ctx.opName,
    });
  }),
  Concat: (ctx, ins, raw) => {
    const xs = ins.filter((t): t is tf.Tensor => t !== undefined);
    const axis = axisOf(ctx.attr("axis", 0) as number, xs[0].rank);
    return [raw ? tf.concat(xs, axis) : F.concat(xs, axis, named(ctx))];
  },
  Transpose: (ctx, ins, raw) => {
    const x = need(ins, 0, ctx);
    const perm = ctx.attr(
      "perm",
      x.shape.map((_, i) => x.rank - 1 - i),
    ) as number[];
    return [raw ? tf.transpose(x, perm) : F.transpose(x, perm, named(ctx))];
  },
  Slice: (ctx, ins, raw) => {
    const x = need(ins, 0, ctx);
    const a = sliceArgs(ctx, ins, x.rank);
    return [raw ? sliceRaw(x, a) : F.slice(x, a.starts, a.ends, a.axes, a.steps, named(ctx))];
  },
  Gather: (ctx, ins, raw) => {
    const x = need(ins, 0, ctx);
    const idxT = need(ins, 1, ctx);
    const axis = axisOf(ctx.attr("axis", 0) as number, x.rank);
    const idx = ints(idxT).map((i) => (i < 0 ? i + x.shape[axis] : i));
    const y = raw ? tf.gather(x, idx, axis) : F.gather(x, idx, axis, named(ctx));
    // the output shape: x's with the axis replaced by the indices' shape (a scalar index drops it)
    return [tf.reshape(y, [...x.shape.slice(0, axis), ...idxT.shape, ...x.shape.slice(axis + 1)])];
  },
  Split: (ctx, ins, raw) => {
    const x = need(ins, 0, ctx);
    const axis = axisOf(ctx.attr("axis", 0) as number, x.rank);
    const n = ctx.node.outputs.length;
    const given = ins[1] !== undefined ? ints(ins[1]) : (ctx.attr("split", null as number[] | null) as number[] | null);
    const sizes =
      given ??
      Array.from({ length: n }, () => Math.ceil(x.shape[axis] / n)).map((s, i) =>
        i === n - 1 ? x.shape[axis] - s * (n - 1) : s,
      );
    return raw ? tf.split(x, sizes, axis) : F.split(x, sizes, axis, named(ctx));
  },
  Pad: (ctx, ins, raw) => {
    const x = need(ins, 0, ctx);
    const onnxMode = ctx.attr("mode", "constant") as string;
    const mode = ({ constant: "constant", reflect: "reflect", edge: "replicate", wrap: "circular" } as const)[
      onnxMode as "constant"
    ];
    if (mode === undefined)
      throw errors.unsupported(
        `loadOnnx: ${ctx.node.name}`,
        `Pad mode '${onnxMode}'`,
        "constant, reflect, edge and wrap are supported",
      );
    const pads = ctx.opset < 11 ? (ctx.attr("pads", []) as number[]) : ints(ins[1]);
    const value = ctx.opset < 11 ? (ctx.attr("value", 0) as number) : ins[2] ? ins[2].dataSync()[0] : 0;
    const r = x.rank;
    const perAxis: [number, number][] = Array.from({ length: r }, (_, i) => [pads[i] ?? 0, pads[i + r] ?? 0]);
    if (perAxis.some(([b, a]) => b < 0 || a < 0))
      throw errors.unsupported(
        `loadOnnx: ${ctx.node.name}`,
        `negative pads [${pads}] (cropping)`,
        "export the crop as a Slice",
      );
    if (raw) return [padTensor(x, { pads: perAxis, value, mode })];
    // F.pad takes PyTorch's order: (before, after) from the last dimension backwards
    const torchOrder = perAxis.slice().reverse().flat();
    return [F.pad(x, torchOrder, value, { ...named(ctx), mode })];
  },
  Expand: (ctx, ins, raw) => {
    const x = need(ins, 0, ctx);
    const shape = ints(need(ins, 1, ctx));
    // ONNX Expand broadcasts both ways: the result has the broadcast of both shapes
    const rank = Math.max(shape.length, x.rank);
    const xs = [...Array(rank - x.rank).fill(1), ...x.shape];
    const ss = [...Array(rank - shape.length).fill(1), ...shape];
    const out = xs.map((d, i) => Math.max(d, ss[i]));
    return [raw ? tf.broadcastTo(tf.reshape(x, xs), out) : F.expand(tf.reshape(x, xs), out, named(ctx))];
  },
  Resize: resize,
  Upsample: resize,
  // shape plumbing: always plain tfjs (reshapes keep the data, so the traced graph stays connected)
  Shape: (ctx, ins) => [tf.tensor1d(need(ins, 0, ctx).shape, "int32")],
  Size: (ctx, ins) => [tf.scalar(need(ins, 0, ctx).size, "int32")],
  Reshape: (ctx, ins) => {
    const x = need(ins, 0, ctx);
    const shape = ctx.opset < 5 ? (ctx.attr("shape", []) as number[]) : ints(ins[1]);
    const allowZero = ctx.attr("allowzero", 0) === 1;
    return [
      tf.reshape(
        x,
        shape.map((d, i) => (d === 0 && !allowZero ? x.shape[i] : d)),
      ),
    ];
  },
  Flatten: (ctx, ins) => {
    const x = need(ins, 0, ctx);
    const axis = axisOf(ctx.attr("axis", 1) as number, x.rank);
    const outer = x.shape.slice(0, axis).reduce((a, b) => a * b, 1);
    return [tf.reshape(x, [outer, -1])];
  },
  Squeeze: (ctx, ins) => {
    const x = need(ins, 0, ctx);
    const axes =
      ctx.opset < 13 ? (ctx.attr("axes", null as number[] | null) as number[] | null) : ins[1] ? ints(ins[1]) : null;
    return [tf.squeeze(x, axes === null ? undefined : axes.map((a) => axisOf(a, x.rank)))];
  },
  Unsqueeze: (ctx, ins) => {
    const x = need(ins, 0, ctx);
    const axes = ctx.opset < 13 ? (ctx.attr("axes", []) as number[]) : ints(ins[1]);
    const rank = x.rank + axes.length;
    const norm = axes.map((a) => axisOf(a, rank)).sort((a, b) => a - b);
    const shape = x.shape.slice();
    for (const a of norm) shape.splice(a, 0, 1);
    return [tf.reshape(x, shape)];
  },
  Cast: (ctx, ins, raw) => {
    const to = ctx.attr("to", 1) as number;
    const x = need(ins, 0, ctx);
    const target = to === 1 || to === 10 || to === 11 ? "float32" : to === 9 ? "bool" : "int32";
    // an integer or bool activation (an attention mask computed from an input) becoming float
    // enters the quantized graph here, as a model input does
    if (!raw && target === "float32" && x.dtype !== "float32")
      return [runOp({ type: "QuantStub", name: ctx.opName ?? "cast", fallback: "quant" }, [x])];
    return [tf.cast(x, target)];
  },
  ConstantOfShape: (ctx, ins) => {
    const v = ctx.attr("value", null as AttrValue) as {
      data: ArrayLike<number>;
      dtype: "float32" | "int32" | "bool";
    } | null;
    return [tf.fill(ints(need(ins, 0, ctx)), v ? Number(v.data[0]) : 0, v?.dtype ?? "float32")];
  },
  Range: (ctx, ins) => [
    tf.range(
      scalarOf(need(ins, 0, ctx)) ?? 0,
      scalarOf(need(ins, 1, ctx)) ?? 0,
      scalarOf(need(ins, 2, ctx)) ?? 1,
      need(ins, 0, ctx).dtype === "float32" ? "float32" : "int32",
    ),
  ],
  Equal: (ctx, ins) => [tf.equal(need(ins, 0, ctx), need(ins, 1, ctx))],
  Less: logic((a, b) => tf.less(a, b)),
  Greater: logic((a, b) => tf.greater(a, b)),
  LessOrEqual: logic((a, b) => tf.lessEqual(a, b)),
  GreaterOrEqual: logic((a, b) => tf.greaterEqual(a, b)),
  And: logic((a, b) => tf.logicalAnd(tf.cast(a, "bool"), tf.cast(b, "bool"))),
  Or: logic((a, b) => tf.logicalOr(tf.cast(a, "bool"), tf.cast(b, "bool"))),
  Xor: logic((a, b) => tf.logicalXor(tf.cast(a, "bool"), tf.cast(b, "bool"))),
  Not: (ctx, ins) => [tf.logicalNot(tf.cast(need(ins, 0, ctx), "bool"))],
  Floor: constantOnly((x) => tf.floor(x)),
  Ceil: constantOnly((x) => tf.ceil(x)),
  Round: constantOnly((x) => tf.round(x)),
  Sign: constantOnly((x) => tf.sign(x)),
  Mod: (ctx, ins) => [tf.mod(need(ins, 0, ctx), need(ins, 1, ctx))],
  ReduceProd: (ctx, ins) => {
    const x = need(ins, 0, ctx);
    return [tf.prod(x, reduceAxes(ctx, ins, x.rank), ctx.attr("keepdims", 1) !== 0)];
  },
  ArgMax: (ctx, ins) => {
    const x = need(ins, 0, ctx);
    const axis = axisOf(ctx.attr("axis", 0) as number, x.rank);
    const y = tf.argMax(x, axis);
    return [ctx.attr("keepdims", 1) !== 0 ? tf.expandDims(y, axis) : y];
  },
  Trilu: (ctx, ins) => {
    const x = need(ins, 0, ctx);
    const k = ins[1] ? ints(ins[1])[0] : 0;
    const upper = ctx.attr("upper", 1) !== 0;
    const [r, c] = x.shape.slice(-2) as number[];
    const keep = tf.tensor(
      Array.from({ length: r * c }, (_, i) => {
        const d = (i % c) - Math.floor(i / c);
        return (upper ? d >= k : d <= k) ? 1 : 0;
      }),
      [r, c],
    );
    return [tf.mul(x, tf.cast(keep, x.dtype))];
  },
  Where: (ctx, ins, raw, constInputs = []) => {
    const [c, a, b] = [need(ins, 0, ctx), need(ins, 1, ctx), need(ins, 2, ctx)];
    const float = a.dtype === "float32" && b.dtype === "float32";
    if (!raw && float && constInputs[0]) {
      // a constant condition (a causal mask): masked_fill when one side is a constant number, else a select op
      const cond = tf.cast(c, "float32");
      if (constInputs[1] && a.size === 1) return [F.maskedFill(b, cond, a.dataSync()[0], named(ctx))];
      if (constInputs[2] && b.size === 1) return [F.maskedFill(a, tf.sub(1, cond), b.dataSync()[0], named(ctx))];
      return [F.where(cond, a, b, named(ctx))];
    }
    const shape = tf.broadcastTo(c, tf.broadcastTo(a, b.shape.length > a.shape.length ? b.shape : a.shape).shape).shape;
    return [tf.where(tf.broadcastTo(tf.cast(c, "bool"), shape), tf.broadcastTo(a, shape), tf.broadcastTo(b, shape))];
  },
};

/** Resize (opset 11+: roi, scales or sizes as inputs) and Upsample (scales): nearest or bilinear, PyTorch's coordinate rules. */
function resize(ctx: NodeContext, ins: Ins, raw: boolean): tf.Tensor[] {
  const x0 = need(ins, 0, ctx);
  if (x0.rank !== 3 && x0.rank !== 4)
    throw errors.unsupported(
      `loadOnnx: ${ctx.node.name} (${ctx.node.opType})`,
      `a resize of a rank-${x0.rank} tensor`,
      "resize (N, C, L) or (N, C, H, W)",
    );
  // a 1-D resize (N, C, L) runs as (N, C, 1, L): scales and sizes get a 1 for the new axis
  const oneD = x0.rank === 3;
  const lift = (v: number[]) => (oneD && v.length === 3 ? [v[0], v[1], 1, v[2]] : v);
  const y = resize2d(ctx, ins, raw, to2d(x0), lift);
  return [oneD ? to1d(y) : y];
}

function resize2d(ctx: NodeContext, ins: Ins, raw: boolean, x: tf.Tensor, lift: (v: number[]) => number[]): tf.Tensor {
  const mode = ctx.attr("mode", "nearest") as string;
  const coord = ctx.attr("coordinate_transformation_mode", ctx.opset < 11 ? "asymmetric" : "half_pixel") as string;
  const nearestMode = ctx.attr("nearest_mode", "round_prefer_floor") as string;
  const scalesIn = ctx.node.opType === "Upsample" ? (ctx.opset < 9 ? null : ins[1]) : ctx.opset < 11 ? ins[1] : ins[2];
  const scales = lift(
    scalesIn !== undefined && scalesIn !== null && scalesIn.size > 0
      ? Array.from(scalesIn.dataSync())
      : ctx.opset < 9
        ? (ctx.attr("scales", []) as number[])
        : [],
  );
  const sizes =
    ctx.node.opType === "Resize" && ctx.opset >= 11 && ins[3] !== undefined && ins[3].size > 0
      ? lift(ints(ins[3]))
      : null;
  const size: [number, number] | undefined = sizes ? [sizes[2], sizes[3]] : undefined;
  const scaleFactor: [number, number] | undefined = size ? undefined : [scales[2] ?? 1, scales[3] ?? 1];
  const where = `loadOnnx: ${ctx.node.name} (${ctx.node.opType})`;
  if (!(COORDINATE_MODES as readonly string[]).includes(coord)) {
    throw errors.unsupported(
      where,
      `resize with coordinate_transformation_mode '${coord}'`,
      `re-export with one of ${COORDINATE_MODES.join(", ")} (PyTorch's F.interpolate writes these)`,
    );
  }
  // opset 10's Resize and Upsample have no nearest_mode: they floor
  const rounding = ctx.opset < 11 ? "floor" : nearestMode;
  if (!(NEAREST_MODES as readonly string[]).includes(rounding))
    throw errors.unsupported(where, `nearest_mode '${rounding}'`, `re-export with one of ${NEAREST_MODES.join(", ")}`);
  let attrs: {
    size?: [number, number];
    scaleFactor?: [number, number];
    mode: "nearest" | "bilinear";
    alignCorners: boolean;
    coordinateMode: CoordinateMode;
    nearestMode?: NearestMode;
  };
  if (mode === "nearest")
    attrs = {
      mode: "nearest",
      alignCorners: false,
      coordinateMode: coord as CoordinateMode,
      nearestMode: rounding as NearestMode,
    };
  else if (mode === "linear" || mode === "bilinear")
    attrs = { mode: "bilinear", alignCorners: coord === "align_corners", coordinateMode: coord as CoordinateMode };
  else
    throw errors.unsupported(
      where,
      `resize mode '${mode}'`,
      "nearest and linear are supported; re-export with F.interpolate(mode='nearest' or 'bilinear')",
    );
  if (size) attrs.size = size;
  if (scaleFactor) attrs.scaleFactor = scaleFactor;
  if (raw) {
    const { mode: _m, ...a } = { ...attrs, size: attrs.size ?? null, scaleFactor: attrs.scaleFactor ?? null };
    return attrs.mode === "nearest" ? resizeNearest(x, a) : resizeBilinear(x, a);
  }
  return F.interpolate(x, { ...attrs, name: ctx.opName });
}

/** ONNX op types quantbook imports (besides the weighted ones and the fused patterns). */
export function handledOpTypes(): string[] {
  return [
    ...Object.keys(HANDLERS),
    "Constant",
    "Conv",
    "ConvTranspose",
    "Gemm",
    "MatMul",
    "BatchNormalization",
    "LayerNormalization",
    "LSTM",
    "GRU",
    "RNN",
  ];
}

/** A step for a node with a handler; runs its quantized ops in the node's scope module. */
/** Ops whose inputs are data moved or compared as they are (no quantized arithmetic on a constant operand). */
export const CONSTANT_OPERANDS_OK = new Set([
  "Reshape",
  "Flatten",
  "Squeeze",
  "Unsqueeze",
  "Shape",
  "Size",
  "Cast",
  "Identity",
  "Dropout",
  "Slice",
  "Gather",
  "Split",
  "Pad",
  "Expand",
  "Resize",
  "Upsample",
  "Clip",
  "Pow",
  "ConstantOfShape",
  "Range",
  "Equal",
  "Where",
  "Tile",
  "ReduceMin",
  "ReduceProd",
  "ReduceL1",
  "ReduceL2",
  "ReduceSumSquare",
  "ArgMax",
  "Trilu",
  "Less",
  "Greater",
  "LessOrEqual",
  "GreaterOrEqual",
  "And",
  "Or",
  "Xor",
  "Not",
  "Floor",
  "Ceil",
  "Round",
  "Sign",
  "Mod",
]);

/** For move / select ops: the inputs that are data (quantized when constant); the rest are indices, shapes, bounds. */
const MOVED_DATA_INPUTS: Record<string, number[]> = { Gather: [0], Where: [1, 2], Expand: [0] };
/** Constant inputs that are an op's float parameters, never quantized as activations. */
const PARAMETER_INPUTS: Record<string, number[]> = { PRelu: [1], InstanceNormalization: [1, 2] };

/**
 * A float constant tensor (a class token, a position embedding) that meets activations in a
 * quantized op enters the graph through a QuantStub of its own, so it is quantized like any input.
 */
function quantizeConstants(ctx: NodeContext, ins: Ins, constInputs: boolean[]): Ins {
  // ops that move or select data quantize only a constant that *is* the data they move — an
  // embedding table gathered by token ids, the values a Where picks — never indices or shapes
  const dataInputs = CONSTANT_OPERANDS_OK.has(ctx.node.opType) ? (MOVED_DATA_INPUTS[ctx.node.opType] ?? []) : null;
  return ins.map((t, k) => {
    if (t === undefined || t.dtype !== "float32" || t.size <= 1 || !constInputs[k]) return t;
    if (dataInputs !== null && !dataInputs.includes(k)) return t;
    if (PARAMETER_INPUTS[ctx.node.opType]?.includes(k)) return t;
    return runOp(
      { type: "QuantStub", name: `${ctx.opName ?? ctx.node.opType.toLowerCase()}_const${k}`, fallback: "quant" },
      [t],
    );
  });
}

export function handlerStep(ctx: NodeContext): PlanStep {
  const h = HANDLERS[ctx.node.opType];
  const shapeOnly = ctx.node.opType === "Shape" || ctx.node.opType === "Size";
  return {
    node: ctx.node.name,
    inputs: ctx.node.inputs,
    outputs: ctx.node.outputs,
    constOutputs: shapeOnly,
    run(root, ins, allConst, constInputs = []) {
      if (allConst) return h(ctx, ins, true);
      const scope = root.moduleAt(ctx.path);
      const run = () => h(ctx, quantizeConstants(ctx, ins, constInputs), false, constInputs);
      return scope instanceof OnnxScope ? scope.inScope(run) : run();
    },
  };
}

/**
 * A step that runs a layer (Conv2d, Linear, ...) found at `path` when it runs; `pre` and `post`
 * are data moves around it (padding before, a crop or transpose after) that keep the scale.
 */
export function moduleStep(
  node: OnnxNode,
  path: string,
  input: string,
  outputs: string[],
  pre?: (x: tf.Tensor) => tf.Tensor,
  post?: (y: tf.Tensor) => tf.Tensor,
): PlanStep {
  return {
    node: node.name,
    inputs: [input],
    outputs,
    run(root, ins) {
      const m = root.moduleAt(path) as Module | undefined;
      if (m === undefined)
        throw errors.invalidArgument(
          "OnnxGraphModule",
          `no layer at '${path}'`,
          "was it removed or renamed by a transform? apply transforms to the loaded model, not to its children",
        );
      const x = ins[0] as tf.Tensor;
      const y = (m.forward as (t: tf.Tensor) => tf.Tensor)(pre ? pre(x) : x);
      return [post ? post(y) : y];
    },
  };
}

export function contextOf(node: OnnxNode, opset: number, path: string, opName: string | null): NodeContext {
  return {
    node,
    opset,
    path,
    opName,
    attr: ((name: string, fallback: AttrValue) =>
      name in node.attrs && node.attrs[name] !== null ? node.attrs[name] : fallback) as NodeContext["attr"],
  };
}
