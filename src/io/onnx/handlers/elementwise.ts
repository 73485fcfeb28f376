/** ONNX node handlers: arithmetic, comparisons and logic (the ONNX side of src/ops/). */
import * as tf from "@tensorflow/tfjs";
import * as F from "../../../nn/functional";
import { errors } from "../../../messages";
import { type Handler, need, named, scalarOf, binary, variadic, logic, constantOnly, einsum, divide } from "./kit";

export const elementwiseHandlers: Record<string, Handler> = {
  Identity: (ctx, ins) => [need(ins, 0, ctx)],
  Dropout: (ctx, ins) => [need(ins, 0, ctx)],
  Add: binary(tf.add, F.add),
  Sub: binary(tf.sub, F.sub),
  Mul: binary(tf.mul, F.mul),
  Div: binary(divide, F.div),
  Sum: variadic(tf.add, F.add),
  Einsum: einsum,
  Max: variadic(tf.maximum, F.maximum, "min"),
  Min: variadic(tf.minimum, F.minimum, "max"),
  Pow: (ctx, ins, raw) => {
    const x = need(ins, 0, ctx);
    const e = need(ins, 1, ctx);
    if (raw) return [tf.pow(x, e)];
    const k = scalarOf(e);
    if (k === null)
      throw errors.unsupported(`loadOnnx: ${ctx.node.name}`, "Pow with a tensor exponent", "use a constant exponent");
    return [F.pow(x, k, named(ctx))];
  },
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
