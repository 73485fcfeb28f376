import * as tf from "@tensorflow/tfjs";
import { uniformParameter } from "./init";
import { Module } from "./module";
import { runOp } from "./op";
import { errors } from "../messages";
import { pair } from "../ops/common";

export interface Conv2dOptions {
  stride?: number | [number, number];
  padding?: number | [number, number];
  dilation?: number | [number, number];
  /** Channel groups (in and out channels divisible by it); groups = in channels is depthwise. */
  groups?: number;
  bias?: boolean;
}

/**
 * 2-D convolution on NCHW tensors with weight [out, in / groups, kh, kw] (PyTorch's layout, so
 * state dicts load as they are); quantized per output channel like a Linear. Zero padding.
 */
export function conv2d(
  x: tf.Tensor,
  weight: tf.Tensor,
  bias: tf.Tensor | null,
  opts: Conv2dOptions & { name?: string | null } = {},
): tf.Tensor {
  const attrs = {
    stride: pair(opts.stride, 1),
    padding: pair(opts.padding, 0),
    dilation: pair(opts.dilation, 1),
    groups: opts.groups ?? 1,
  };
  const name = opts.name === undefined ? "conv2d" : opts.name;
  return runOp({ type: "Conv2d", name, fallback: "conv2d", weight, params: bias ? [bias] : [], attrs }, [x]);
}

/** Groups must be a positive integer dividing both channel counts. */
export function checkGroups(layer: string, groups: number, inChannels: number, outChannels: number): void {
  if (!Number.isInteger(groups) || groups < 1 || inChannels % groups !== 0 || outChannels % groups !== 0) {
    throw errors.shapeMismatch(
      layer,
      `groups = ${groups}`,
      `a positive integer dividing inChannels (${inChannels}) and outChannels (${outChannels})`,
    );
  }
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
    for (const [k, v] of [
      ["inChannels", inChannels],
      ["outChannels", outChannels],
    ] as const) {
      if (!Number.isInteger(v) || v <= 0) throw errors.outOfRange("Conv2d", k, v, "a positive integer");
    }
    const groups = options.groups ?? 1;
    checkGroups("Conv2d", groups, inChannels, outChannels);
    const [kh, kw] = pair(kernelSize, 1);
    const bound = 1 / Math.sqrt((inChannels / groups) * kh * kw);
    this.weight = uniformParameter([outChannels, inChannels / groups, kh, kw], bound);
    this.bias = options.bias === false ? null : uniformParameter([outChannels], bound);
  }

  forward(x: tf.Tensor): tf.Tensor {
    return conv2d(x, this.weight, this.bias, { ...this.options, name: null });
  }
}
