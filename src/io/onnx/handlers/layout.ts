/** ONNX node handlers: moving and selecting data, resizing, shape plumbing (the ONNX side of src/ops/). */
import * as tf from "@tensorflow/tfjs";
import * as F from "../../../nn/functional";
import { runOp } from "../../../nn/op";
import { errors } from "../../../messages";
import {
  depthToSpace as depthToSpaceRaw,
  padTensor,
  slice as sliceRaw,
  spaceToDepth as spaceToDepthRaw,
} from "../../../ops/layout";
import { gridSample as gridSampleRaw, type GridPadding, type GridSampleMode } from "../../../ops/resize";
import type { AttrValue } from "../proto";
import { type Handler, ints, need, axisOf, named, scalarOf, sliceArgs, resize } from "./kit";

export const layoutHandlers: Record<string, Handler> = {
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
};
