/**
 * Quantization-aware functional ops (`qb.F`). In a prepared model each call gets its own
 * fake-quantizers, named `<module path>.<name>`; `name` defaults to the op (`mul`, `sum`, ...)
 * with `_1`, `_2` for repeats in one module. Numbers are constants of the op, not inputs.
 *
 * ```ts
 * const prod = qb.F.mul(x.reshape([2, 100, 1, 256]), w.reshape([1, 1, 60, 256]));  // "<path>.mul"
 * const y = qb.F.add(qb.F.sum(prod, -1), b);
 * ```
 */
import * as tf from "@tensorflow/tfjs";
import { runOp, runUnary as one, type Named } from "./op";
import {
  COORDINATE_MODES,
  NEAREST_MODES,
  type CoordinateMode,
  type GridPadding,
  type GridSampleMode,
  type NearestMode,
} from "../ops/resize";
import { PAD_MODES, type PadMode } from "../ops/layout";
import { errors } from "../messages";
import type { OpType } from "../ops/opTypes";

/** The one-input ops whose entries declare their PyTorch face (relu, sigmoid, gelu, softmax, ...). */
export * from "./generated/functional";

/** Name of the op inside its module (default: the op's own name; null: the module's own op, named by its path). */
export type OpOptions = Named;

type Operand = tf.Tensor | number;

function binary(type: OpType, fallback: string, a: Operand, b: Operand, opts?: OpOptions): tf.Tensor {
  const tensors = [a, b].filter((v): v is tf.Tensor => typeof v !== "number");
  if (tensors.length === 0)
    throw errors.invalidArgument(
      fallback,
      "both operands are numbers",
      "pass at least one tensor (compute with two numbers in plain JavaScript)",
    );
  const attrs: Record<string, unknown> = {};
  if (typeof a === "number") Object.assign(attrs, { scalar: a, scalarIndex: 0 });
  if (typeof b === "number") Object.assign(attrs, { scalar: b, scalarIndex: 1 });
  return runOp({ type, name: opts?.name === undefined ? fallback : opts.name, fallback, attrs }, tensors);
}

export function mul(a: Operand, b: Operand, opts?: OpOptions): tf.Tensor {
  return binary("Mul", "mul", a, b, opts);
}

export function add(a: Operand, b: Operand, opts?: OpOptions): tf.Tensor {
  return binary("Add", "add", a, b, opts);
}

export function sub(a: Operand, b: Operand, opts?: OpOptions): tf.Tensor {
  return binary("Sub", "sub", a, b, opts);
}

export function div(a: Operand, b: Operand, opts?: OpOptions): tf.Tensor {
  return binary("Div", "div", a, b, opts);
}

/**
 * torch.masked_fill with a constant mask (broadcasting against x): set positions take `value`
 * (−Infinity allowed). Keeps x's scale; the value saturates to its grid when quantized.
 */
export function maskedFill(x: tf.Tensor, mask: tf.Tensor, value: number, opts?: OpOptions): tf.Tensor {
  const m = mask.dtype === "float32" ? mask : tf.cast(mask, "float32");
  try {
    tf.backend_util.assertAndGetBroadcastShape(x.shape, m.shape);
  } catch {
    throw errors.shapeMismatch(
      "masked_fill",
      `a mask of shape [${m.shape}]`,
      `a mask that broadcasts against the input [${x.shape}]`,
    );
  }
  // ±Infinity is kept as ±Number.MAX_VALUE (JSON-safe in the IR; ±∞ again in float32)
  const v = value === Infinity ? Number.MAX_VALUE : value === -Infinity ? -Number.MAX_VALUE : value;
  const out = runOp(
    {
      type: "MaskedFill",
      name: opts?.name === undefined ? "masked_fill" : opts.name,
      fallback: "masked_fill",
      params: [m],
      attrs: { value: v },
    },
    [x],
  );
  if (m !== mask) m.dispose();
  return out;
}

/** torch.where(cond, a, b) with a constant condition; a and b are activations. */
export function where(cond: tf.Tensor, a: tf.Tensor, b: tf.Tensor, opts?: OpOptions): tf.Tensor {
  const c = cond.dtype === "float32" ? cond : tf.cast(cond, "float32");
  const out = runOp(
    { type: "Where", name: opts?.name === undefined ? "where" : opts.name, fallback: "where", params: [c] },
    [a, b],
  );
  if (c !== cond) c.dispose();
  return out;
}

/** torch.maximum / torch.minimum: element-wise, broadcasting (a number operand too). */
export function maximum(a: Operand, b: Operand, opts?: OpOptions): tf.Tensor {
  return binary("Maximum", "maximum", a, b, opts);
}
export function minimum(a: Operand, b: Operand, opts?: OpOptions): tf.Tensor {
  return binary("Minimum", "minimum", a, b, opts);
}

export function sum(x: tf.Tensor, axis: number | number[], keepDims = false, opts?: OpOptions): tf.Tensor {
  return runOp(
    { type: "Sum", name: opts?.name === undefined ? "sum" : opts.name, fallback: "sum", attrs: { axis, keepDims } },
    [x],
  );
}

export function mean(x: tf.Tensor, axis: number | number[], keepDims = false, opts?: OpOptions): tf.Tensor {
  return runOp(
    { type: "Mean", name: opts?.name === undefined ? "mean" : opts.name, fallback: "mean", attrs: { axis, keepDims } },
    [x],
  );
}

/** Batched matrix product of two activations (`a @ b`). */
export function matmul(a: tf.Tensor, b: tf.Tensor, opts?: OpOptions): tf.Tensor {
  return runOp({ type: "Matmul", name: opts?.name === undefined ? "matmul" : opts.name, fallback: "matmul" }, [a, b]);
}

/**
 * `x @ weight^T + bias` with weight [out, in] — or `x @ weight` with weight [in, out] when
 * `weightLayout: "in_out"` (Paddle's layout; quantized per output channel, axis 1).
 */
export function linear(
  x: tf.Tensor,
  weight: tf.Tensor,
  bias: tf.Tensor | null,
  opts?: { name?: string | null; weightLayout?: "out_in" | "in_out" },
): tf.Tensor {
  const name = opts?.name === undefined ? "linear" : opts.name;
  const attrs = opts?.weightLayout === "in_out" ? { weightLayout: "in_out" } : {};
  return runOp({ type: "Linear", name, fallback: "linear", weight, params: bias ? [bias] : [], attrs }, [x]);
}

/**
 * Transpose as an op of its own (a data move on the BPU, keeping its input's scale), so the
 * graph stays connected: a raw `tf.transpose` between two ops makes a new tensor that `prepare`
 * cannot trace back (its check report lists it as an untraced input). `tf.reshape` needs no wrapper.
 */
export function transpose(x: tf.Tensor, perm?: number[], opts?: OpOptions): tf.Tensor {
  const p = perm ?? x.shape.map((_, i) => x.rank - 1 - i);
  return runOp(
    {
      type: "Transpose",
      name: opts?.name === undefined ? "transpose" : opts.name,
      fallback: "transpose",
      attrs: { perm: p },
    },
    [x],
  );
}

export { conv2d } from "./conv";

export function concat(xs: tf.Tensor[], axis: number, opts?: OpOptions): tf.Tensor {
  return runOp(
    { type: "Concat", name: opts?.name === undefined ? "concat" : opts.name, fallback: "concat", attrs: { axis } },
    xs,
  );
}

type Pair = number | [number, number];
const opName = (o: Named | undefined, fallback: string) => (o?.name === undefined ? fallback : o.name);

/** clamp(x, min, max); keeps its input's scale (`relu6` is clip(0, 6), `hardtanh` clip(-1, 1) by default). */
export function clip(x: tf.Tensor, min: number | null, max: number | null, opts?: Named): tf.Tensor {
  return one("Clip", "clip", x, { min, max }, opts);
}
export const relu6 = (x: tf.Tensor, opts?: Named) => clip(x, 0, 6, { name: opName(opts, "relu6") });
export const hardtanh = (x: tf.Tensor, minVal = -1, maxVal = 1, opts?: Named) =>
  clip(x, minVal, maxVal, { name: opName(opts, "hardtanh") });

/** PReLU with a learned slope: [C] (per channel, dim 1) or [1]. */
export function prelu(x: tf.Tensor, weight: tf.Tensor, opts?: Named): tf.Tensor {
  if (weight.size !== 1 && (x.rank < 2 || weight.size !== x.shape[1])) {
    throw errors.shapeMismatch(
      "prelu",
      `weight of ${weight.size} slopes for an input of shape [${x.shape}]`,
      `1 or one per channel (${x.shape[1]})`,
    );
  }
  return runOp({ type: "PReLU", name: opName(opts, "prelu"), fallback: "prelu", params: [weight] }, [x]);
}
/** x ^ exponent for a constant exponent. */
export function pow(x: tf.Tensor, exponent: number, opts?: Named): tf.Tensor {
  if (typeof exponent !== "number")
    throw errors.unsupported("pow", "a tensor exponent", "pass the exponent as a number (a constant)");
  return one("Pow", "pow", x, { exponent }, opts);
}
/** Maximum over `axis`; keeps its input's scale. */
export function max(x: tf.Tensor, axis: number | number[], keepDims = false, opts?: Named): tf.Tensor {
  return one("MaxReduce", "max", x, { axis, keepDims }, opts);
}
export function min(x: tf.Tensor, axis: number | number[], keepDims = false, opts?: Named): tf.Tensor {
  return one("MinReduce", "min", x, { axis, keepDims }, opts);
}
/** torch.Tensor.repeat: `reps` per axis. */
export function tile(x: tf.Tensor, reps: number[], opts?: Named): tf.Tensor {
  if (reps.length !== x.rank || !reps.every((r) => Number.isInteger(r) && r >= 1)) {
    throw errors.shapeMismatch("tile", `reps [${reps}]`, `one positive integer per axis of [${x.shape}]`);
  }
  return one("Tile", "tile", x, { reps }, opts);
}
/** PyTorch's pixel_shuffle (ONNX DepthToSpace, mode CRD): [N, C·r², H, W] → [N, C, H·r, W·r]. */
export function pixelShuffle(x: tf.Tensor, upscaleFactor: number, opts?: Named): tf.Tensor {
  return depthToSpace(x, upscaleFactor, "CRD", { name: opName(opts, "pixel_shuffle") });
}
/** ONNX DepthToSpace: mode "DCR" (ONNX's default) or "CRD" (= pixelShuffle). */
export function depthToSpace(x: tf.Tensor, blocksize: number, mode: "DCR" | "CRD" = "DCR", opts?: Named): tf.Tensor {
  if (x.rank !== 4 || (x.shape[1] as number) % (blocksize * blocksize) !== 0) {
    throw errors.shapeMismatch(
      "depth_to_space",
      `input [${x.shape}]`,
      `4 dims and channels divisible by ${blocksize}² = ${blocksize * blocksize}`,
    );
  }
  return one("DepthToSpace", "depth_to_space", x, { blocksize, mode }, opts);
}
/** ONNX SpaceToDepth: [N, C, H, W] → [N, C·b², H/b, W/b]. */
export function spaceToDepth(x: tf.Tensor, blocksize: number, opts?: Named): tf.Tensor {
  if (x.rank !== 4 || (x.shape[2] as number) % blocksize !== 0 || (x.shape[3] as number) % blocksize !== 0) {
    throw errors.shapeMismatch(
      "space_to_depth",
      `input [${x.shape}]`,
      `4 dims and a height and width divisible by ${blocksize}`,
    );
  }
  return one("SpaceToDepth", "space_to_depth", x, { blocksize }, opts);
}
/** F.instance_norm (running statistics off): per (sample, channel) over the remaining axes; weight and bias per channel. */
export function instanceNorm(
  x: tf.Tensor,
  opts: Named & { weight?: tf.Tensor | null; bias?: tf.Tensor | null; eps?: number } = {},
): tf.Tensor {
  if (!opts.weight && opts.bias)
    throw errors.invalidArgument(
      "instance_norm",
      "a bias without a weight",
      "pass weight together with bias (weight = ones for a bias alone)",
    );
  const params = opts.weight ? [opts.weight, ...(opts.bias ? [opts.bias] : [])] : [];
  return runOp(
    {
      type: "InstanceNorm",
      name: opName(opts, "instance_norm"),
      fallback: "instance_norm",
      params,
      attrs: { eps: opts.eps ?? 1e-5 },
    },
    [x],
  );
}

export interface PoolOptions extends Named {
  stride?: Pair | null;
  padding?: Pair;
  ceilMode?: boolean;
}
const pairOf = (v: Pair | null | undefined): [number, number] | null | undefined =>
  v === null || v === undefined ? v : typeof v === "number" ? [v, v] : v;

export function maxPool2d(x: tf.Tensor, kernelSize: Pair, opts: PoolOptions & { dilation?: Pair } = {}): tf.Tensor {
  return one(
    "MaxPool2d",
    "max_pool2d",
    x,
    {
      kernelSize: pairOf(kernelSize),
      stride: pairOf(opts.stride) ?? null,
      padding: pairOf(opts.padding ?? 0),
      dilation: pairOf(opts.dilation ?? 1),
      ceilMode: Boolean(opts.ceilMode),
    },
    opts,
  );
}
export function avgPool2d(
  x: tf.Tensor,
  kernelSize: Pair,
  opts: PoolOptions & { countIncludePad?: boolean; divisorOverride?: number | null } = {},
): tf.Tensor {
  return one(
    "AvgPool2d",
    "avg_pool2d",
    x,
    {
      kernelSize: pairOf(kernelSize),
      stride: pairOf(opts.stride) ?? null,
      padding: pairOf(opts.padding ?? 0),
      ceilMode: Boolean(opts.ceilMode),
      countIncludePad: opts.countIncludePad ?? true,
      divisorOverride: opts.divisorOverride ?? null,
    },
    opts,
  );
}
/** Average over PyTorch's adaptive bins; outputSize 1 is global average pooling. */
export function adaptiveAvgPool2d(x: tf.Tensor, outputSize: Pair, opts?: Named): tf.Tensor {
  return one("AdaptiveAvgPool2d", "adaptive_avg_pool2d", x, { outputSize: pairOf(outputSize) }, opts);
}

/**
 * PyTorch's F.interpolate for NCHW: mode "nearest" or "bilinear" (alignCorners). `coordinateMode`
 * and `nearestMode` take ONNX's rules instead (for graphs other exporters wrote).
 */
export function interpolate(
  x: tf.Tensor,
  opts: Named & {
    size?: Pair;
    scaleFactor?: Pair;
    mode?: "nearest" | "bilinear";
    alignCorners?: boolean;
    coordinateMode?: CoordinateMode;
    nearestMode?: NearestMode;
  },
): tf.Tensor {
  const mode = opts.mode ?? "nearest";
  if (mode !== "nearest" && mode !== "bilinear")
    throw errors.unsupported("interpolate", `mode '${String(mode)}'`, `use "nearest" or "bilinear"`);
  if (opts.size === undefined && opts.scaleFactor === undefined)
    throw errors.invalidArgument("interpolate", "neither size nor scaleFactor given", "pass size or scaleFactor");
  if (opts.coordinateMode !== undefined && !COORDINATE_MODES.includes(opts.coordinateMode)) {
    throw errors.notOneOf("interpolate", "coordinateMode", opts.coordinateMode, COORDINATE_MODES);
  }
  if (opts.nearestMode !== undefined && !NEAREST_MODES.includes(opts.nearestMode)) {
    throw errors.notOneOf("interpolate", "nearestMode", opts.nearestMode, NEAREST_MODES);
  }
  const attrs = {
    size: pairOf(opts.size) ?? null,
    scaleFactor: pairOf(opts.scaleFactor) ?? null,
    alignCorners: Boolean(opts.alignCorners),
    ...(opts.coordinateMode === undefined ? {} : { coordinateMode: opts.coordinateMode }),
    ...(opts.nearestMode === undefined ? {} : { nearestMode: opts.nearestMode }),
  };
  return mode === "nearest"
    ? one("ResizeNearest", "interpolate", x, attrs, opts)
    : one("ResizeBilinear", "interpolate", x, attrs, opts);
}

/**
 * PyTorch's F.grid_sample on NCHW: `grid` [N, Ho, Wo, 2] holds (x, y) in [−1, 1]. mode "bilinear"
 * (default) or "nearest"; paddingMode "zeros" (default), "border" or "reflection"; alignCorners.
 */
export function gridSample(
  x: tf.Tensor,
  grid: tf.Tensor,
  opts: Named & { mode?: GridSampleMode; paddingMode?: GridPadding; alignCorners?: boolean } = {},
): tf.Tensor {
  if (x.rank !== 4 || grid.rank !== 4 || grid.shape[3] !== 2 || grid.shape[0] !== x.shape[0]) {
    throw errors.shapeMismatch(
      "grid_sample",
      `input [${x.shape}] and grid [${grid.shape}]`,
      "input [N, C, H, W] and grid [N, Ho, Wo, 2] with the same N",
    );
  }
  const mode = opts.mode ?? "bilinear";
  const paddingMode = opts.paddingMode ?? "zeros";
  if (mode !== "bilinear" && mode !== "nearest")
    throw errors.unsupported("grid_sample", `mode '${String(mode)}'`, `use "bilinear" or "nearest"`);
  if (!["zeros", "border", "reflection"].includes(paddingMode))
    throw errors.notOneOf("grid_sample", "paddingMode", paddingMode, ["zeros", "border", "reflection"]);
  return runOp(
    {
      type: "GridSample",
      name: opName(opts, "grid_sample"),
      fallback: "grid_sample",
      attrs: { mode, paddingMode, alignCorners: Boolean(opts.alignCorners) },
    },
    [x, grid],
  );
}

/** x[starts:ends:steps] on `axes` (default 0, 1, ...); negative indices count from the end. */
export function slice(
  x: tf.Tensor,
  starts: number[],
  ends: number[],
  axes?: number[],
  steps?: number[],
  opts?: Named,
): tf.Tensor {
  return one(
    "Slice",
    "slice",
    x,
    { starts, ends, axes: axes ?? starts.map((_, i) => i), steps: steps ?? starts.map(() => 1) },
    opts,
  );
}
/** torch.split: pieces of `sizes` (or equal pieces of that size) along `axis`, each a Slice op. */
export function split(x: tf.Tensor, sizes: number | number[], axis = 0, opts?: Named): tf.Tensor[] {
  const ax = axis < 0 ? axis + x.rank : axis;
  const n = x.shape[ax];
  const parts = Array.isArray(sizes)
    ? sizes
    : Array.from({ length: Math.ceil(n / sizes) }, (_, i) => Math.min(sizes, n - i * sizes));
  if (parts.reduce((a, b) => a + b, 0) !== n)
    throw errors.shapeMismatch(
      "split",
      `sizes [${parts}]`,
      `sizes adding up to dimension ${axis} of [${x.shape}] (${n})`,
    );
  let at = 0;
  return parts.map((p) => {
    const piece = slice(x, [at], [at + p], [ax], [1], { name: opName(opts, "split") });
    at += p;
    return piece;
  });
}
/** Elements at constant `indices` along `axis`. */
export function gather(x: tf.Tensor, indices: number[], axis = 0, opts?: Named): tf.Tensor {
  return one("Gather", "gather", x, { indices, axis }, opts);
}
export function expand(x: tf.Tensor, shape: number[], opts?: Named): tf.Tensor {
  return one("Expand", "expand", x, { shape }, opts);
}
/**
 * PyTorch's F.pad: `pad` lists (before, after) from the last dimension backwards; `value` for the
 * constant mode, `opts.mode` "reflect", "replicate" or "circular" for the others.
 */
export function pad(x: tf.Tensor, padding: number[], value = 0, opts?: Named & { mode?: PadMode }): tf.Tensor {
  if (padding.length % 2 !== 0 || padding.length / 2 > x.rank || !padding.every((v) => Number.isInteger(v) && v >= 0))
    throw errors.shapeMismatch(
      "pad",
      `padding [${padding}]`,
      `non-negative integer (before, after) pairs for at most ${x.rank} dimensions`,
    );
  const mode = opts?.mode ?? "constant";
  if (!PAD_MODES.includes(mode)) throw errors.notOneOf("pad", "mode", mode, PAD_MODES);
  const pads = x.shape.map(() => [0, 0] as [number, number]);
  for (let i = 0; i < padding.length / 2; i++) pads[x.rank - 1 - i] = [padding[2 * i], padding[2 * i + 1]];
  if (mode === "reflect" && pads.some(([b, a], d) => Math.max(b, a) >= (x.shape[d] as number))) {
    throw errors.shapeMismatch(
      "pad",
      `reflect padding [${padding}]`,
      `padding smaller than the padded dimensions of [${x.shape}] (as in PyTorch)`,
    );
  }
  return one("Pad", "pad", x, mode === "constant" ? { pads, value } : { pads, value: 0, mode }, opts);
}
/** torch.permute: a Transpose op. */
export const permute = (x: tf.Tensor, dims: number[], opts?: OpOptions) => transpose(x, dims, opts);

/** Reshapes keep the tensor's data, so they need no op of their own (the traced graph stays connected). */
export const reshape = (x: tf.Tensor, shape: number[]) => tf.reshape(x, shape);
export function flatten(x: tf.Tensor, startDim = 1, endDim = -1): tf.Tensor {
  const end = endDim < 0 ? endDim + x.rank : endDim;
  const merged = x.shape.slice(startDim, end + 1).reduce((a, b) => a * b, 1);
  return tf.reshape(x, [...x.shape.slice(0, startDim), merged, ...x.shape.slice(end + 1)]);
}
export const squeeze = (x: tf.Tensor, axis?: number[]) => tf.squeeze(x, axis);
export const unsqueeze = (x: tf.Tensor, axis: number) => tf.expandDims(x, axis);

export { convTranspose2d } from "./convTranspose";
