/**
 * Nonlinear functions. On the chip they are lookup tables over every input code (the integer
 * model builds the same table); ReLU of a quantized input only clamps codes, so it keeps its
 * input's scale.
 */
import * as tf from "@tensorflow/tfjs";
import { buildLut } from "./int/kernels";
import { realArithmetic } from "./int/generic";
import { defineOp, type Attrs, type OpDef } from "./registry";
import type { OpType } from "./opTypes";
import { float, unary, type Lowering } from "./lowering";

/**
 * A LUT op: float compute, the table's real function, the ONNX lowering, and its PyTorch face
 * and ONNX import (`face`: `qb.F` / `qb.nn` are generated from it, see src/ops/registry.ts).
 */
export function defineLut(
  type: OpType,
  doc: string,
  compute: (t: tf.Tensor, attrs: Attrs) => tf.Tensor,
  lut: (x: number, attrs: Attrs) => number,
  onnx: Lowering,
  face: Pick<OpDef, "torch" | "onnxImport"> = {},
): void {
  defineOp({
    ...face,
    elementwise: true,
    onnx,
    type,
    doc,
    role: "compute",
    unit: "lut",
    compute: ([t], _w, _p, attrs) => compute(t, attrs),
    integer: (node) => buildLut(node, (x) => lut(x, node.attrs)),
    lut,
  });
}

defineLut(
  "Sigmoid",
  "1 / (1 + e^-x)",
  (t) => tf.sigmoid(t),
  (x) => 1 / (1 + Math.exp(-x)),
  unary("Sigmoid"),
  { torch: { fn: "sigmoid", module: "Sigmoid" }, onnxImport: { op: "Sigmoid" } },
);
defineLut("Tanh", "tanh(x)", (t) => tf.tanh(t), Math.tanh, unary("Tanh"), {
  torch: { fn: "tanh", module: "Tanh" },
  onnxImport: { op: "Tanh" },
});
defineLut("Exp", "e^x", (t) => tf.exp(t), Math.exp, unary("Exp"), { torch: { fn: "exp" }, onnxImport: { op: "Exp" } });
defineLut(
  "Rsqrt",
  "1 / sqrt(x)",
  (t) => tf.rsqrt(t),
  (x) => 1 / Math.sqrt(x),
  ({ b, inputs: [x] }) => b.op("Reciprocal", [b.op("Sqrt", [x])]),
  { torch: { fn: "rsqrt" } },
);

defineOp({
  type: "ReLU",
  doc: "max(x, 0); keeps its input's scale",
  role: "passthrough",
  unit: "vector",
  compute: ([t]) => tf.relu(t),
  onnx: unary("Relu"),
  elementwise: true,
  torch: { fn: "relu", module: "ReLU" },
  onnxImport: { op: "Relu" },
  integer:
    (node) =>
    ([x]) => ({ data: x.data.map((q) => Math.max(q, 0)), shape: x.shape, quant: node.output.quant }),
});

/** erf(x), |error| < 1.2e-7 (Numerical Recipes' erfc Chebyshev fit): below float32's resolution. */
export function erf(x: number): number {
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const r =
    t *
    Math.exp(
      -z * z -
        1.26551223 +
        t *
          (1.00002368 +
            t *
              (0.37409196 +
                t *
                  (0.09678418 +
                    t *
                      (-0.18628806 +
                        t *
                          (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
    );
  return x >= 0 ? 1 - r : r - 1;
}

const hardSigmoid = (x: number, a: Attrs) => Math.min(1, Math.max(0, (a.alpha as number) * x + (a.beta as number)));
const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);

defineLut(
  "HardSigmoid",
  "clamp(alpha·x + beta, 0, 1); alpha 1/6, beta 1/2 in PyTorch, alpha 0.2 in Paddle's and ONNX's defaults",
  (t, a) => tf.clipByValue(tf.add(tf.mul(t, a.alpha as number), a.beta as number), 0, 1),
  hardSigmoid,
  ({ b, inputs: [x], attrs: a }) =>
    b.op("Clip", [
      b.op("Add", [b.op("Mul", [x, b.scalar(a.alpha as number)]), b.scalar(a.beta as number)]),
      b.scalar(0),
      b.scalar(1),
    ]),
  {
    torch: {
      fn: "hardsigmoid",
      module: "Hardsigmoid",
      args: [
        { name: "alpha", default: 1 / 6 },
        { name: "beta", default: 0.5 },
      ],
      style: "options",
    },
    onnxImport: { op: "HardSigmoid", attrs: { alpha: ["alpha", 0.2], beta: ["beta", 0.5] } },
  },
);
defineLut(
  "HardSwish",
  "x · relu6(x + 3) / 6",
  (t) => tf.mul(t, tf.div(tf.clipByValue(tf.add(t, 3), 0, 6), 6)),
  (x) => (x * Math.min(6, Math.max(0, x + 3))) / 6,
  ({ b, inputs: [x] }) =>
    b.op("Mul", [
      x,
      b.op("Div", [b.op("Clip", [b.op("Add", [x, b.scalar(3)]), b.scalar(0), b.scalar(6)]), b.scalar(6)]),
    ]),
  { torch: { fn: "hardswish", module: "Hardswish" }, onnxImport: { op: "HardSwish" } },
);
defineLut(
  "SiLU",
  "x · sigmoid(x)",
  (t) => tf.mul(t, tf.sigmoid(t)),
  (x) => x / (1 + Math.exp(-x)),
  ({ b, inputs: [x] }) => b.op("Mul", [x, b.op("Sigmoid", [x])]),
  { torch: { fn: "silu", module: "SiLU" } },
);
defineLut(
  "GELU",
  "x · Φ(x) (attrs.approximate 'none': erf form; 'tanh': the tanh approximation)",
  (t, a) =>
    a.approximate === "tanh"
      ? tf.mul(tf.mul(t, 0.5), tf.add(1, tf.tanh(tf.mul(tf.add(t, tf.mul(tf.pow(t, 3), 0.044715)), SQRT_2_OVER_PI))))
      : tf.mul(tf.mul(t, 0.5), tf.add(1, tf.erf(tf.div(t, Math.SQRT2)))),
  (x, a) =>
    a.approximate === "tanh"
      ? 0.5 * x * (1 + Math.tanh(SQRT_2_OVER_PI * (x + 0.044715 * x * x * x)))
      : 0.5 * x * (1 + erf(x / Math.SQRT2)),
  ({ b, inputs: [x], attrs: a }) => {
    const half = b.op("Mul", [x, b.scalar(0.5)]);
    const inner =
      a.approximate === "tanh"
        ? b.op("Tanh", [
            b.op("Mul", [
              b.op("Add", [x, b.op("Mul", [b.op("Pow", [x, b.scalar(3)]), b.scalar(0.044715)])]),
              b.scalar(SQRT_2_OVER_PI),
            ]),
          ])
        : b.op("Erf", [b.op("Div", [x, b.scalar(Math.SQRT2)])]);
    return b.op("Mul", [half, b.op("Add", [b.scalar(1), inner])]);
  },
  {
    torch: {
      fn: "gelu",
      module: "GELU",
      args: [{ name: "approximate", default: "none", type: '"none" | "tanh"' }],
      style: "options",
    },
  },
);
defineLut(
  "LeakyReLU",
  "x for x ≥ 0, negative_slope · x below",
  (t, a) => tf.leakyRelu(t, a.negativeSlope as number),
  (x, a) => (x >= 0 ? x : (a.negativeSlope as number) * x),
  unary("LeakyRelu", (a) => ({ alpha: float(a.negativeSlope as number) })),
  {
    torch: { fn: "leakyRelu", module: "LeakyReLU", args: [{ name: "negativeSlope", default: 0.01 }] },
    onnxImport: { op: "LeakyRelu", attrs: { negativeSlope: ["alpha", 0.01] } },
  },
);
defineLut(
  "ELU",
  "x for x > 0, alpha · (e^x − 1) below",
  (t, a) =>
    a.alpha === 1 ? tf.elu(t) : tf.where(tf.greater(t, 0), t, tf.mul(tf.sub(tf.exp(t), 1), a.alpha as number)),
  (x, a) => (x > 0 ? x : (a.alpha as number) * Math.expm1(x)),
  unary("Elu", (a) => ({ alpha: float(a.alpha as number) })),
  {
    torch: { fn: "elu", module: "ELU", args: [{ name: "alpha", default: 1 }] },
    onnxImport: { op: "Elu", attrs: { alpha: ["alpha", 1] } },
  },
);
/** PyTorch's softplus: log(1 + e^(beta·x)) / beta, linear above beta·x > threshold. */
const softplus = (x: number, a: Attrs) => {
  const bx = (a.beta as number) * x;
  return bx > (a.threshold as number) ? x : Math.log1p(Math.exp(bx)) / (a.beta as number);
};
defineLut(
  "Mish",
  "x · tanh(log(1 + e^x)) (YOLOv4-era detectors)",
  (t) => tf.mul(t, tf.tanh(tf.softplus(t))),
  (x) => x * Math.tanh(x > 20 ? x : Math.log1p(Math.exp(x))),
  ({ b, inputs: [x] }) => b.op("Mul", [x, b.op("Tanh", [b.op("Softplus", [x])])]),
  { torch: { fn: "mish", module: "Mish" }, onnxImport: { op: "Mish" } },
);
defineLut(
  "Softplus",
  "log(1 + e^(beta·x)) / beta (x above beta·x > threshold)",
  (t, a) => {
    const bx = tf.mul(t, a.beta as number);
    return tf.where(tf.greater(bx, a.threshold as number), t, tf.div(tf.softplus(bx), a.beta as number));
  },
  softplus,
  ({ b, inputs: [x], attrs: a }) => {
    const bx = b.op("Mul", [x, b.scalar(a.beta as number)]);
    const soft = b.op("Div", [b.op("Softplus", [bx]), b.scalar(a.beta as number)]);
    return b.op("Where", [b.op("Greater", [bx, b.scalar(a.threshold as number)]), x, soft]);
  },
  {
    torch: {
      fn: "softplus",
      module: "Softplus",
      args: [
        { name: "beta", default: 1 },
        { name: "threshold", default: 20 },
      ],
      style: "options",
    },
    onnxImport: { op: "Softplus", fixed: { beta: 1, threshold: 20 } },
  },
);
/** SELU's constants: ONNX's defaults, PyTorch's alpha and scale rounded to float32. */
const SELU_ALPHA = 1.6732632423543772;
const SELU_SCALE = 1.0507009873554805;
defineLut(
  "SELU",
  "scale · x for x > 0, scale · alpha · (e^x − 1) below (self-normalising networks)",
  (t, a) => tf.mul(tf.where(tf.greater(t, 0), t, tf.mul(tf.sub(tf.exp(t), 1), a.alpha as number)), a.scale as number),
  (x, a) => (a.scale as number) * (x > 0 ? x : (a.alpha as number) * Math.expm1(x)),
  ({ b, inputs: [x], attrs: a }) =>
    b.op("Selu", [x], { alpha: float(a.alpha as number), gamma: float(a.scale as number) }),
  {
    torch: {
      fn: "selu",
      module: "SELU",
      args: [
        { name: "alpha", default: SELU_ALPHA },
        { name: "scale", default: SELU_SCALE },
      ],
      style: "options",
    },
    onnxImport: { op: "Selu", attrs: { alpha: ["alpha", SELU_ALPHA], scale: ["gamma", SELU_SCALE] } },
  },
);
defineLut("Abs", "|x|", (t) => tf.abs(t), Math.abs, unary("Abs"), { torch: { fn: "abs" }, onnxImport: { op: "Abs" } });
defineLut(
  "Neg",
  "−x",
  (t) => tf.neg(t),
  (x) => -x,
  unary("Neg"),
  { torch: { fn: "neg" }, onnxImport: { op: "Neg" } },
);
defineLut("Log", "ln x", (t) => tf.log(t), Math.log, unary("Log"), { torch: { fn: "log" }, onnxImport: { op: "Log" } });
defineLut("Sqrt", "√x", (t) => tf.sqrt(t), Math.sqrt, unary("Sqrt"), {
  torch: { fn: "sqrt" },
  onnxImport: { op: "Sqrt" },
});
defineLut(
  "Reciprocal",
  "1 / x",
  (t) => tf.reciprocal(t),
  (x) => 1 / x,
  unary("Reciprocal"),
  { torch: { fn: "reciprocal" }, onnxImport: { op: "Reciprocal" } },
);
defineLut(
  "Pow",
  "x ^ attrs.exponent (a constant)",
  (t, a) => tf.pow(t, a.exponent as number),
  (x, a) => x ** (a.exponent as number),
  ({ b, inputs: [x], attrs: a }) => b.op("Pow", [x, b.scalar(a.exponent as number)]),
);

/** x for x ≥ 0, slope · x below; the slope (a float parameter) is per channel (dim 1) or one number. */
export function prelu(t: tf.Tensor, slope: tf.Tensor): tf.Tensor {
  const s =
    slope.rank === 1 && t.rank > 1 && slope.size > 1
      ? tf.reshape(slope, [1, slope.size, ...Array.from({ length: t.rank - 2 }, () => 1)])
      : slope;
  return tf.where(tf.greaterEqual(t, 0), t, tf.mul(t, s));
}

defineOp({
  type: "PReLU",
  doc: "x for x ≥ 0, slope · x below, a learned slope per channel (params[0]); computed exactly from codes and rounded once",
  role: "compute",
  unit: "vector",
  compute: ([t], _w, [slope]) => prelu(t, slope),
  onnx: ({ b, inputs: [x], inputShapes: [xs], params: [slope], paramShapes: [ss] }) => {
    const n = ss.reduce((p, d) => p * d, 1);
    const s =
      ss.length === 1 && xs.length > 1 && n > 1
        ? b.reshape(slope, [1, n, ...Array.from({ length: xs.length - 2 }, () => 1)])
        : slope;
    return b.op("Where", [b.op("GreaterOrEqual", [x, b.scalar(0)]), x, b.op("Mul", [x, s])]);
  },
  flops: ([x]) => 2 * x.reduce((p, d) => p * d, 1),
  integer: realArithmetic(([t], _w, [slope]) => prelu(t, slope)),
});

defineOp({
  type: "Clip",
  doc: "clamp(x, min, max) (ReLU6 is clip(0, 6)); keeps its input's scale, the bounds rounded to its grid",
  role: "passthrough",
  unit: "vector",
  compute: ([t], _w, _p, a) =>
    tf.clipByValue(t, (a.min as number | null) ?? -3.4e38, (a.max as number | null) ?? 3.4e38),
  onnx: ({ b, inputs: [x], attrs: a }) =>
    b.op("Clip", [x, b.scalar((a.min as number | null) ?? -3.4e38), b.scalar((a.max as number | null) ?? 3.4e38)]),
  integer:
    (node) =>
    ([x]) => {
      const s = x.quant.scale;
      if (s === null)
        return {
          data: x.data.map((v) =>
            Math.min(
              Math.max(v, (node.attrs.min as number | null) ?? -Infinity),
              (node.attrs.max as number | null) ?? Infinity,
            ),
          ),
          shape: x.shape,
          quant: x.quant,
        };
      const lo =
        node.attrs.min === null || node.attrs.min === undefined
          ? -Infinity
          : Math.round((node.attrs.min as number) / s[0]);
      const hi =
        node.attrs.max === null || node.attrs.max === undefined
          ? Infinity
          : Math.round((node.attrs.max as number) / s[0]);
      return { data: x.data.map((q) => Math.min(Math.max(q, lo), hi)), shape: x.shape, quant: node.output.quant };
    },
});

for (const [type, doc, fn, passes, torch] of [
  ["Softmax", "exp(x − max) / Σ exp over attrs.dim", (t: tf.Tensor, d: number) => softmax(t, d), 3, "softmax"],
  [
    "LogSoftmax",
    "x − max − log Σ exp(x − max) over attrs.dim",
    (t: tf.Tensor, d: number) => logSoftmax(t, d),
    4,
    "logSoftmax",
  ],
] as const) {
  defineOp({
    type,
    torch: { fn: torch, module: type, args: [{ name: "dim" }] },
    doc,
    role: "compute",
    unit: "vector",
    compute: ([t], _w, _p, a) => fn(t, a.dim as number),
    onnx: ({ b, inputs: [x], attrs: a }) => b.op(type, [x], { axis: a.dim as number }),
    flops: ([x]) => passes * x.reduce((p, d) => p * d, 1),
    integer: realArithmetic((xs, _w, _p, a) => fn(xs[0], a.dim as number)),
  });
}

/** log softmax over any axis (tfjs's own takes only the last). */
export function logSoftmax(t: tf.Tensor, dim: number): tf.Tensor {
  const d = dim < 0 ? dim + t.rank : dim;
  const shifted = tf.sub(t, tf.max(t, d, true));
  return tf.sub(shifted, tf.log(tf.sum(tf.exp(shifted), d, true)));
}

/** Normalises each (sample, channel) over the remaining axes, then scale[c] · x + bias[c] (params, when given). */
export function instanceNorm(t: tf.Tensor, params: tf.Tensor[], eps: number): tf.Tensor {
  const axes = Array.from({ length: t.rank - 2 }, (_, i) => i + 2);
  const { mean, variance } = tf.moments(t, axes, true);
  let y = tf.div(tf.sub(t, mean), tf.sqrt(tf.add(variance, eps)));
  const ch = [1, t.shape[1] as number, ...axes.map(() => 1)];
  if (params[0]) y = tf.mul(y, tf.reshape(params[0], ch));
  if (params[1]) y = tf.add(y, tf.reshape(params[1], ch));
  return y;
}

defineOp({
  type: "InstanceNorm",
  doc: "instance normalisation over the axes after the channel (attrs.eps), with an optional per-channel scale and bias (params); GroupNorm exports as it; computed exactly from codes and rounded once",
  role: "compute",
  unit: "vector",
  compute: ([t], _w, params, a) => instanceNorm(t, params, a.eps as number),
  onnx: ({ b, inputs: [x], inputShapes: [xs], params, attrs: a }) => {
    const axes = Array.from({ length: xs.length - 2 }, (_, i) => i + 2);
    const centred = b.op("Sub", [x, b.op("ReduceMean", [x], { axes, keepdims: 1 })]);
    const variance = b.op("ReduceMean", [b.op("Mul", [centred, centred])], { axes, keepdims: 1 });
    let y = b.op("Div", [centred, b.op("Sqrt", [b.op("Add", [variance, b.scalar(a.eps as number)])])]);
    const ch = [1, xs[1], ...axes.map(() => 1)];
    if (params[0]) y = b.op("Mul", [y, b.reshape(params[0], ch)]);
    if (params[1]) y = b.op("Add", [y, b.reshape(params[1], ch)]);
    return y;
  },
  flops: ([x]) => 6 * x.reduce((p, d) => p * d, 1),
  integer: realArithmetic(([t], _w, params, a) => instanceNorm(t, params, a.eps as number)),
});

export function softmax(t: tf.Tensor, dim: number): tf.Tensor {
  const d = dim < 0 ? dim + t.rank : dim;
  if (d === t.rank - 1) return tf.softmax(t);
  const e = tf.exp(tf.sub(t, tf.max(t, d, true)));
  return tf.div(e, tf.sum(e, d, true));
}
