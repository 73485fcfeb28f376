/** ONNX node handlers: nonlinear functions, softmax and instance norm (the ONNX side of src/ops/). */
import * as tf from "@tensorflow/tfjs";
import * as F from "../../../nn/functional";
import { errors } from "../../../messages";
import {
  instanceNorm as instanceNormRaw,
  logSoftmax as logSoftmaxRaw,
  softmax as softmaxRaw,
} from "../../../ops/activation";
import { type Handler, ints, need, axisOf, named, floatCompute } from "./kit";

export const activationHandlers: Record<string, Handler> = {
  Erf: (ctx, ins, raw) => {
    if (raw) return [tf.erf(need(ins, 0, ctx))];
    throw errors.unsupported(
      `loadOnnx: ${ctx.node.name}`,
      "an Erf outside the GELU pattern x·½·(1 + erf(x/√2))",
      "export GELU as one op (nn.GELU) or write the piece with qb.F",
    );
  },
  PRelu: (ctx, ins, raw) => {
    const x = need(ins, 0, ctx);
    const slope = need(ins, 1, ctx);
    if (raw) return [floatCompute("PReLU", x, {}, [slope])];
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
  Clip: (ctx, ins, raw) => {
    const x = need(ins, 0, ctx);
    const min = ctx.opset < 11 ? (ctx.attr("min", -3.4e38) as number) : ins[1] ? (ints(ins[1])[0] ?? null) : null;
    const max = ctx.opset < 11 ? (ctx.attr("max", 3.4e38) as number) : ins[2] ? (ints(ins[2])[0] ?? null) : null;
    if (raw) return [floatCompute("Clip", x, { min, max })];
    return [F.clip(x, min, max, named(ctx))];
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
};
