/** ONNX node handlers: reductions and pooling (the ONNX side of src/ops/). */
import * as tf from "@tensorflow/tfjs";
import * as F from "../../../nn/functional";
import { errors } from "../../../messages";
import { type Handler, need, axisOf, named, pool1dOr2d, sumSquares, reduceAxes, reduce, pads2d } from "./kit";

export const reduceHandlers: Record<string, Handler> = {
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
};
