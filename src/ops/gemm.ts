/** Linear, Conv2d and Matmul: weights per output channel, int32 accumulation. */
import * as tf from "@tensorflow/tfjs";
import { conv2d as intConv2d, linear as intLinear, matmul as intMatmul } from "./int/kernels";
import { pair, sizeOf } from "./common";
import { defineOp, findOp } from "./registry";
import { realArithmetic } from "./int/generic";
import { errors } from "../messages";

/** Paddle stores a Linear's weight as [in, out] (attrs.weightLayout "in_out"); PyTorch as [out, in]. */
const inOut = (attrs: Record<string, unknown>) => attrs.weightLayout === "in_out";

defineOp({
  type: "Linear",
  doc: "x @ weight^T + bias, weight [out, in] (or x @ weight with weightLayout 'in_out', Paddle's layout)",
  role: "gemm",
  weightAxis: (attrs) => (inOut(attrs) ? 1 : 0),
  unit: "tensor",
  compute: ([t], w, params, attrs) => {
    const weight = w as tf.Tensor;
    const [out, inF] = (inOut(attrs) ? [weight.shape[1], weight.shape[0]] : weight.shape) as [number, number];
    if (t.shape[t.rank - 1] !== inF) {
      throw errors.shapeMismatch(
        "linear",
        `input shape [${t.shape}] for weight shape [${weight.shape}]`,
        `the last input dimension ${inF}`,
      );
    }
    const flat = tf.reshape(t, [-1, inF]);
    let y = tf.matMul(flat, weight, false, !inOut(attrs));
    if (params.length > 0) y = tf.add(y, params[0]);
    return tf.reshape(y, [...t.shape.slice(0, -1), out]);
  },
  onnx: ({ b, inputs: [x], inputShapes: [xs], weight, weightShape, params, attrs, outputShape }) => {
    const inF = (inOut(attrs) ? (weightShape as number[])[0] : (weightShape as number[])[1]) as number;
    const flat = b.reshape(x, [-1, inF], xs);
    const y = b.op("Gemm", [flat, weight as string, ...params.slice(0, 1)], { transB: inOut(attrs) ? 0 : 1 });
    return b.reshape(y, outputShape);
  },
  flops: ([x], w) => (sizeOf(x) / (x[x.length - 1] || 1)) * (w as number[])[0] * (w as number[])[1],
  integer:
    (node) =>
    ([x]) =>
      intLinear(node, x),
});

/** ONNX Conv / ConvTranspose attributes of a call (PyTorch's symmetric padding). */
function convAttrs(weightShape: number[], attrs: Record<string, unknown>) {
  const padding = pair(attrs.padding as number[] | undefined, 0);
  return {
    kernel_shape: weightShape.slice(2),
    strides: pair(attrs.stride as number[] | undefined, 1),
    pads: [...padding, ...padding],
    dilations: pair(attrs.dilation as number[] | undefined, 1),
    group: { int: (attrs.groups as number | undefined) ?? 1 },
  };
}

/** Output height and width of a convolution (PyTorch's formula). */
export function convOutput(
  h: number,
  w: number,
  k: [number, number],
  stride: [number, number],
  padding: [number, number],
  dilation: [number, number],
): [number, number] {
  return [
    Math.floor((h + 2 * padding[0] - dilation[0] * (k[0] - 1) - 1) / stride[0]) + 1,
    Math.floor((w + 2 * padding[1] - dilation[1] * (k[1] - 1) - 1) / stride[1]) + 1,
  ];
}

defineOp({
  type: "Conv2d",
  doc: "2-D convolution, NCHW input, weight [out, in / groups, kh, kw], zero padding",
  role: "gemm",
  weightAxis: 0,
  unit: "tensor",
  compute: ([t], w, params, attrs) => {
    const weight = w as tf.Tensor;
    const [, inPerGroup] = weight.shape;
    const groups = (attrs.groups as number | undefined) ?? 1;
    const stride = pair(attrs.stride as number[] | undefined, 1);
    const padding = pair(attrs.padding as number[] | undefined, 0);
    const dilation = pair(attrs.dilation as number[] | undefined, 1);
    // the wasm backend's convolution does not survive invalid geometry: refuse it here
    const [kh0, kw0] = weight.shape.slice(2);
    const fits = [0, 1].every(
      (d) => (t.shape[2 + d] as number) + 2 * padding[d] - dilation[d] * ([kh0, kw0][d] - 1) - 1 >= 0,
    );
    if (
      ![...stride, ...dilation].every((v) => Number.isInteger(v) && v >= 1) ||
      !padding.every((v) => Number.isInteger(v) && v >= 0) ||
      !Number.isInteger(groups) ||
      groups < 1 ||
      weight.shape.some((d) => d < 1)
    ) {
      throw errors.outOfRange(
        "conv2d",
        "stride, dilation, groups, padding and weight",
        `[${stride}], [${dilation}], ${groups}, [${padding}], [${weight.shape}]`,
        "integers ≥ 1 (stride, dilation, groups), ≥ 0 (padding) and a non-empty weight",
      );
    }
    if (t.rank === 4 && !fits)
      throw errors.shapeMismatch(
        "conv2d",
        `the ${kh0}×${kw0} kernel (dilation [${dilation}]) on input [${t.shape}] with padding [${padding}]`,
        "a kernel that fits the padded input",
      );
    if (t.rank !== 4 || t.shape[1] !== inPerGroup * groups) {
      throw errors.shapeMismatch(
        "conv2d",
        `input shape [${t.shape}] for weight shape [${weight.shape}]`,
        `NCHW input with ${inPerGroup * groups} channels`,
      );
    }
    const pad: [[number, number], [number, number], [number, number], [number, number]] = [
      [0, 0],
      [padding[0], padding[0]],
      [padding[1], padding[1]],
      [0, 0],
    ];
    // tfjs cannot stride and dilate at once: dilate with stride 1, then keep every stride-th row / column
    const both = (stride[0] > 1 || stride[1] > 1) && (dilation[0] > 1 || dilation[1] > 1);
    const one = (xg: tf.Tensor, wg: tf.Tensor) => {
      const nhwc = tf.transpose(xg, [0, 2, 3, 1]) as tf.Tensor4D;
      const filter = tf.transpose(wg, [2, 3, 1, 0]) as tf.Tensor4D;
      const y = tf.conv2d(nhwc, filter, both ? 1 : stride, pad, "NHWC", dilation);
      return both ? tf.stridedSlice(y, [0, 0, 0, 0], y.shape, [1, stride[0], stride[1], 1]) : y;
    };
    // groups: each slice of input channels meets its slice of filters
    const xs = groups === 1 ? [t] : tf.split(t, groups, 1);
    const ws = groups === 1 ? [weight] : tf.split(weight, groups, 0);
    let y: tf.Tensor =
      groups === 1
        ? one(t, weight)
        : tf.concat(
            xs.map((xg, g) => one(xg, ws[g])),
            3,
          );
    if (params.length > 0) y = tf.add(y, params[0]);
    return tf.transpose(y, [0, 3, 1, 2]);
  },
  onnx: ({ b, inputs: [x], weight, weightShape, params, attrs }) =>
    b.op("Conv", [x, weight as string, ...params.slice(0, 1)], convAttrs(weightShape as number[], attrs)),
  flops: ([x], w, attrs) => {
    const [out, inPerGroup, kh, kw] = w as number[];
    const [oh, ow] = convOutput(
      x[2],
      x[3],
      [kh, kw],
      pair(attrs.stride as number[], 1),
      pair(attrs.padding as number[], 0),
      pair(attrs.dilation as number[], 1),
    );
    // each output element sums over its group's input channels only
    return x[0] * out * oh * ow * inPerGroup * kh * kw;
  },
  integer:
    (node) =>
    ([x]) =>
      intConv2d(node, x),
});

defineOp({
  type: "Matmul",
  doc: "batched matrix product of two activations (a @ b)",
  role: "gemm",
  unit: "tensor",
  compute: ([x, y]) => {
    if (x.shape[x.rank - 1] !== y.shape[y.rank - 2]) {
      throw errors.shapeMismatch(
        "matmul",
        `[${x.shape}] @ [${y.shape}]`,
        `${x.shape[x.rank - 1]} rows in the second operand (inner dimensions equal)`,
      );
    }
    return tf.matMul(x, y);
  },
  onnx: ({ b, inputs: [x, y] }) => b.op("MatMul", [x, y]),
  flops: ([a, b]) => sizeOf(a) * (b[b.length - 1] ?? 1),
  integer:
    (node) =>
    ([a, b]) =>
      intMatmul(node, a, b),
});

/**
 * Transposed convolution as PyTorch's ConvTranspose2d (weight [in, out / groups, kh, kw]): the
 * input with stride − 1 zeros between pixels, padded by dilation·(k − 1) − padding (plus
 * output_padding after), convolved with the flipped, in/out-swapped kernel.
 */
export function convTranspose2d(
  t: tf.Tensor,
  weight: tf.Tensor,
  bias: tf.Tensor | undefined,
  attrs: Record<string, unknown>,
): tf.Tensor {
  const [inC, outPerGroup, kh, kw] = weight.shape;
  const groups = (attrs.groups as number | undefined) ?? 1;
  const stride = pair(attrs.stride as number[] | undefined, 1);
  const padding = pair(attrs.padding as number[] | undefined, 0);
  const outPad = pair(attrs.outputPadding as number[] | undefined, 0);
  const dilation = pair(attrs.dilation as number[] | undefined, 1);
  if (t.rank !== 4 || t.shape[1] !== inC)
    throw errors.shapeMismatch(
      "convTranspose2d",
      `input shape [${t.shape}] for weight shape [${weight.shape}]`,
      `NCHW input with ${inC} channels`,
    );
  const [n, , h, w] = t.shape;
  // zeros between pixels
  let x = t;
  if (stride[0] > 1 || stride[1] > 1) {
    x = tf.reshape(t, [n, inC, h, 1, w, 1]);
    x = tf.pad(x, [
      [0, 0],
      [0, 0],
      [0, 0],
      [0, stride[0] - 1],
      [0, 0],
      [0, stride[1] - 1],
    ]);
    x = tf.reshape(x, [n, inC, h * stride[0], w * stride[1]]);
    x = tf.slice(x, [0, 0, 0, 0], [n, inC, (h - 1) * stride[0] + 1, (w - 1) * stride[1] + 1]);
  }
  const edge = [dilation[0] * (kh - 1) - padding[0], dilation[1] * (kw - 1) - padding[1]];
  // negative edges crop instead of padding
  const padOrCrop = (v: tf.Tensor, axis: 2 | 3, before: number, after: number) => {
    const size = v.shape[axis] as number;
    const cropped = tf.slice(
      v,
      axis === 2 ? [0, 0, Math.max(0, -before), 0] : [0, 0, 0, Math.max(0, -before)],
      axis === 2
        ? [-1, -1, size - Math.max(0, -before) - Math.max(0, -after), -1]
        : [-1, -1, -1, size - Math.max(0, -before) - Math.max(0, -after)],
    );
    const pads: [number, number][] = [
      [0, 0],
      [0, 0],
      [0, 0],
      [0, 0],
    ];
    pads[axis] = [Math.max(0, before), Math.max(0, after)];
    return tf.pad(cropped, pads);
  };
  x = padOrCrop(padOrCrop(x, 2, edge[0], edge[0] + outPad[0]), 3, edge[1], edge[1] + outPad[1]);
  // [in, out/g, kh, kw] → [out, in/g, kh, kw], spatially flipped
  const inPerGroup = inC / groups;
  let wc = tf.reshape(weight, [groups, inPerGroup, outPerGroup, kh, kw]);
  wc = tf.reshape(tf.transpose(wc, [0, 2, 1, 3, 4]), [groups * outPerGroup, inPerGroup, kh, kw]);
  wc = tf.reverse(wc, [2, 3]);
  return opDefConv.compute([x], wc, bias ? [bias] : [], { stride: [1, 1], padding: [0, 0], dilation, groups });
}

const opDefConv = findOp("Conv2d") as NonNullable<ReturnType<typeof findOp>>;

defineOp({
  type: "ConvTranspose2d",
  doc: "transposed 2-D convolution, weight [in, out / groups, kh, kw] (stride, padding, outputPadding, dilation, groups)",
  role: "gemm",
  weightAxis: 1,
  unit: "tensor",
  compute: ([t], w, params, attrs) => convTranspose2d(t, w as tf.Tensor, params[0], attrs),
  onnx: ({ b, inputs: [x], weight, weightShape, params, attrs }) =>
    b.op("ConvTranspose", [x, weight as string, ...params.slice(0, 1)], {
      ...convAttrs(weightShape as number[], attrs),
      output_padding: pair(attrs.outputPadding as number[] | undefined, 0),
    }),
  flops: ([x], w) => {
    const [, outPerGroup, kh, kw] = w as number[];
    // every input pixel scatters into out/g channels × kh × kw positions
    return sizeOf(x) * outPerGroup * kh * kw;
  },
  integer: realArithmetic(([t], w, params, attrs) => convTranspose2d(t, w as tf.Tensor, params[0], attrs)),
});
