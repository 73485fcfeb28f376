import * as tf from "@tensorflow/tfjs";
import { uniformParameter } from "./init";
import { Module } from "./module";
import { runOp } from "./op";

export interface Conv2dOptions {
  stride?: number | [number, number];
  padding?: number | [number, number];
  dilation?: number | [number, number];
  /** Channel groups (in and out channels divisible by it); groups = in channels is depthwise. */
  groups?: number;
  bias?: boolean;
}

const pair = (v: number | [number, number] | undefined, d: number): [number, number] => (v === undefined ? [d, d] : typeof v === "number" ? [v, v] : v);

/**
 * 2-D convolution on NCHW tensors with weight [out, in / groups, kh, kw] (PyTorch's layout, so
 * state dicts load as they are); quantized per output channel like a Linear. Zero padding.
 */
export function conv2d(x: tf.Tensor, weight: tf.Tensor, bias: tf.Tensor | null, opts: Conv2dOptions & { name?: string | null } = {}): tf.Tensor {
  const [out, inPerGroup, kh, kw] = weight.shape;
  const groups = opts.groups ?? 1;
  const inC = inPerGroup * groups;
  const stride = pair(opts.stride, 1);
  const padding = pair(opts.padding, 0);
  const dilation = pair(opts.dilation, 1);
  const [batch, , height, width] = x.shape as number[];
  const oh = Math.floor((height + 2 * padding[0] - dilation[0] * (kh - 1) - 1) / stride[0]) + 1;
  const ow = Math.floor((width + 2 * padding[1] - dilation[1] * (kw - 1) - 1) / stride[1]) + 1;
  const name = opts.name === undefined ? "conv2d" : opts.name;
  return runOp(
    { type: "Conv2d", name, fallback: "conv2d", weight, params: bias ? [bias] : [], flops: batch * out * oh * ow * inC * kh * kw, attrs: { stride, padding, dilation, groups } },
    [x],
    ([t], w, params) => {
      if (t.rank !== 4 || t.shape[1] !== inC) {
        throw new Error(`input shape [${t.shape}] does not match weight shape [${weight.shape}]: expected NCHW input with ${inC} channels`);
      }
      const pad: [[number, number], [number, number], [number, number], [number, number]] = [[0, 0], [padding[0], padding[0]], [padding[1], padding[1]], [0, 0]];
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
      const ws = groups === 1 ? [w as tf.Tensor] : tf.split(w as tf.Tensor, groups, 0);
      let y: tf.Tensor = groups === 1 ? one(t, w as tf.Tensor) : tf.concat(xs.map((xg, g) => one(xg, ws[g])), 3);
      if (params.length > 0) y = tf.add(y, params[0]);
      return tf.transpose(y, [0, 3, 1, 2]);
    },
  );
}

export class Conv2d extends Module {
  weight: tf.Variable;
  bias: tf.Variable | null;

  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    readonly kernelSize: number | [number, number],
    readonly options: Conv2dOptions & { groups?: number } = {},
  ) {
    super();
    for (const [k, v] of [["inChannels", inChannels], ["outChannels", outChannels]] as const) {
      if (!Number.isInteger(v) || v <= 0) throw new Error(`Conv2d: ${k} must be a positive integer, got ${v}`);
    }
    const groups = options.groups ?? 1;
    if (!Number.isInteger(groups) || groups < 1 || inChannels % groups !== 0 || outChannels % groups !== 0) {
      throw new Error(`Conv2d: groups = ${groups} must be a positive integer dividing inChannels (${inChannels}) and outChannels (${outChannels})`);
    }
    const [kh, kw] = pair(kernelSize, 1);
    const bound = 1 / Math.sqrt((inChannels / groups) * kh * kw);
    this.weight = uniformParameter([outChannels, inChannels / groups, kh, kw], bound);
    this.bias = options.bias === false ? null : uniformParameter([outChannels], bound);
  }

  forward(x: tf.Tensor): tf.Tensor {
    return conv2d(x, this.weight, this.bias, { ...this.options, name: null });
  }
}
