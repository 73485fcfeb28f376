/**
 * What every ONNX node handler shares: the handler type, the node context, and helpers that
 * read inputs and attributes or compute a piece both quantized and raw.
 */
import * as tf from "@tensorflow/tfjs";
import * as F from "../../../nn/functional";
import { errors } from "../../../messages";
import { allOps, opDef } from "../../../ops";
import { callName } from "../../../ops/registry";
import { runUnary } from "../../../nn/op";
import {
  COORDINATE_MODES,
  NEAREST_MODES,
  resizeBilinear,
  resizeNearest,
  type CoordinateMode,
  type NearestMode,
} from "../../../ops/resize";
import type { AttrValue, OnnxNode } from "../proto";
import type { OpType } from "../../../ops/opTypes";

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

export type Ins = (tf.Tensor | undefined)[];
/** A handler: raw (all inputs constant) or quantized computation of a node's outputs. */
export type Handler = (ctx: NodeContext, ins: Ins, raw: boolean, constInputs?: boolean[]) => tf.Tensor[];

export const ints = (t: tf.Tensor | undefined): number[] => (t === undefined ? [] : Array.from(t.dataSync(), Number));
export const need = (ins: Ins, i: number, ctx: NodeContext): tf.Tensor => {
  const t = ins[i];
  if (t === undefined)
    throw errors.corruptData(
      `${ctx.node.name} (${ctx.node.opType}): input ${i} ('${ctx.node.inputs[i] ?? ""}') is missing`,
    );
  return t;
};
export const axisOf = (a: number, rank: number) => (a < 0 ? a + rank : a);
export const named = (ctx: NodeContext) => ({ name: ctx.opName });
export const scalarOf = (t: tf.Tensor): number | null => (t.size === 1 ? t.dataSync()[0] : null);

/** a op b, with a constant scalar operand passed as a number (no tensor input of its own). */
export function binary(
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
export function floatCompute(
  type: OpType,
  x: tf.Tensor,
  attrs: Record<string, unknown> = {},
  params: tf.Tensor[] = [],
): tf.Tensor {
  return opDef(type, "loadOnnx").compute([x], undefined, params, attrs);
}

/**
 * The handlers of the ONNX ops that registry entries import one-to-one (their `onnxImport`): the
 * attributes are read with ONNX's defaults, an all-constant node runs the entry's own compute.
 */
export function registryHandlers(): Record<string, Handler> {
  const out: Record<string, Handler> = {};
  for (const def of allOps()) {
    const imp = def.onnxImport;
    if (imp === undefined) continue;
    out[imp.op] = (ctx, ins, raw) => {
      const attrs: Record<string, unknown> = { ...imp.fixed };
      for (const [k, [onnxName, fallback]] of Object.entries(imp.attrs ?? {})) attrs[k] = ctx.attr(onnxName, fallback);
      const x = need(ins, 0, ctx);
      return [raw ? floatCompute(def.type, x, attrs) : runUnary(def.type, callName(def), x, attrs, named(ctx))];
    };
  }
  return out;
}

/**
 * Max / Min over any number of inputs, as a chain of binary ops (`_1`, `_2`, ... after the first).
 * A one-element constant operand (tf2onnx writes `Max(LeakyRelu(x), c)` with c of shape [1,1,1,1])
 * becomes a bound of a Clip: the clip keeps its input's scale and rounds the bound to its grid, as
 * the chip does, instead of leaving an unquantized float operand the chip refuses.
 */
export function variadic(
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
export function logic(fn: (a: tf.Tensor, b: tf.Tensor) => tf.Tensor): Handler {
  return (ctx, ins) => [fn(need(ins, 0, ctx), need(ins, 1, ctx))];
}

/** An op quantbook computes only on constants or integer data (shapes, indices); on a float activation it says so. */
export function constantOnly(fn: (x: tf.Tensor) => tf.Tensor): Handler {
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
export function pool1dOr2d(
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
export function sumSquares(ctx: NodeContext, ins: Ins, raw: boolean, root: boolean): tf.Tensor {
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
export function einsum(ctx: NodeContext, ins: Ins, raw: boolean): tf.Tensor[] {
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
export function reduceAxes(ctx: NodeContext, ins: Ins, rank: number): number[] {
  const fromInput = ins[1] !== undefined ? ints(ins[1]) : null;
  const axes = fromInput ?? (ctx.attr("axes", null as number[] | null) as number[] | null);
  return axes === null || axes.length === 0
    ? Array.from({ length: rank }, (_, i) => i)
    : axes.map((a) => axisOf(a, rank));
}

export function reduce(kind: "mean" | "sum" | "max"): Handler {
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
export function sliceArgs(ctx: NodeContext, ins: Ins, rank: number) {
  const starts = ctx.opset < 10 ? (ctx.attr("starts", [] as number[]) as number[]) : ints(ins[1]);
  const ends = ctx.opset < 10 ? (ctx.attr("ends", [] as number[]) as number[]) : ints(ins[2]);
  const axesIn =
    ctx.opset < 10 ? (ctx.attr("axes", null as number[] | null) as number[] | null) : ins[3] ? ints(ins[3]) : null;
  const axes = (axesIn ?? starts.map((_, i) => i)).map((a) => axisOf(a, rank));
  const steps = ctx.opset < 10 ? starts.map(() => 1) : ins[4] ? ints(ins[4]) : starts.map(() => 1);
  return { starts, ends, axes, steps };
}

export const pads2d = (pads: number[]): { sym: [number, number] | null; pad: number[] } => {
  // ONNX pads: [top, left, bottom, right]
  const [t, l, b, r] = pads.length === 4 ? pads : [0, 0, 0, 0];
  return t === b && l === r ? { sym: [t, l], pad: [] } : { sym: null, pad: [l, r, t, b] };
};

/** ONNX Div: integer operands divide with truncation (C semantics), as shape arithmetic needs. */
export function divide(a: tf.Tensor, b: tf.Tensor): tf.Tensor {
  if (a.dtype !== "int32" || b.dtype !== "int32") return tf.div(a, b);
  const q = tf.div(tf.cast(a, "float32"), tf.cast(b, "float32"));
  return tf.cast(tf.where(tf.less(q, 0), tf.ceil(q), tf.floor(q)), "int32");
}

/** Resize (opset 11+: roi, scales or sizes as inputs) and Upsample (scales): nearest or bilinear, PyTorch's coordinate rules. */
export function resize(ctx: NodeContext, ins: Ins, raw: boolean): tf.Tensor[] {
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

export function resize2d(
  ctx: NodeContext,
  ins: Ins,
  raw: boolean,
  x: tf.Tensor,
  lift: (v: number[]) => number[],
): tf.Tensor {
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
