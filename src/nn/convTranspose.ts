import type * as tf from "@tensorflow/tfjs";
import { uniformParameter } from "./init";
import { checkGroups, type Conv2dOptions } from "./conv";
import { Module } from "./module";
import { runOp } from "./op";
import { errors } from "../messages";
import { pair } from "../ops/common";

/** Conv2d's options and the extra output rows / columns of a transposed convolution. */
export interface ConvTranspose2dOptions extends Conv2dOptions {
  outputPadding?: number | [number, number];
}

/**
 * Transposed 2-D convolution on NCHW tensors with PyTorch's weight layout [in, out / groups, kh, kw]
 * and arguments; the weight is quantized per output channel (axis 1).
 */
export function convTranspose2d(
  x: tf.Tensor,
  weight: tf.Tensor,
  bias: tf.Tensor | null,
  opts: ConvTranspose2dOptions & { name?: string | null } = {},
): tf.Tensor {
  const attrs = {
    stride: pair(opts.stride, 1),
    padding: pair(opts.padding, 0),
    outputPadding: pair(opts.outputPadding, 0),
    dilation: pair(opts.dilation, 1),
    groups: opts.groups ?? 1,
  };
  const [sh, sw] = attrs.stride;
  const [dh, dw] = attrs.dilation;
  if (attrs.outputPadding[0] >= Math.max(sh, dh) || attrs.outputPadding[1] >= Math.max(sw, dw)) {
    throw errors.outOfRange(
      "convTranspose2d",
      "outputPadding",
      `[${attrs.outputPadding}]`,
      "smaller than stride or dilation (as in PyTorch)",
    );
  }
  const name = opts.name === undefined ? "conv_transpose2d" : opts.name;
  return runOp(
    { type: "ConvTranspose2d", name, fallback: "conv_transpose2d", weight, params: bias ? [bias] : [], attrs },
    [x],
  );
}

export class ConvTranspose2d extends Module {
  weight: tf.Variable;
  bias: tf.Variable | null;

  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    readonly kernelSize: number | [number, number],
    readonly options: ConvTranspose2dOptions = {},
  ) {
    super();
    const groups = options.groups ?? 1;
    checkGroups("ConvTranspose2d", groups, inChannels, outChannels);
    const [kh, kw] = pair(kernelSize, 1);
    const bound = 1 / Math.sqrt((outChannels / groups) * kh * kw);
    this.weight = uniformParameter([inChannels, outChannels / groups, kh, kw], bound);
    this.bias = options.bias === false ? null : uniformParameter([outChannels], bound);
  }

  forward(x: tf.Tensor): tf.Tensor {
    return convTranspose2d(x, this.weight, this.bias, { ...this.options, name: null });
  }
}
