/** The op golden cases (PyTorch-made) and the qb.F call of each, shared by the op registry and engine tests. */
import * as tf from "@tensorflow/tfjs";
import { readFileSync } from "node:fs";
import * as path from "node:path";
import * as qb from "../src";
import { allOps } from "../src/ops";
import { callName, type TorchApi } from "../src/ops/registry";

interface T {
  shape: number[];
  data: number[];
}
export interface Case {
  name: string;
  inputs: T[];
  output: T;
  weight?: T;
  bias?: T;
  scale?: T;
  shift?: T;
  slope?: T;
  mask?: T;
  cond?: T;
}

export const golden = JSON.parse(
  readFileSync(path.join(__dirname, "..", "..", "test", "fixtures", "ops_golden.json"), "utf8"),
) as { cases: Case[] };
export const ten = (v: T) => tf.tensor(v.data, v.shape, "float32");
const F = qb.F;

/** A case's constant tensors (weight, bias, a BatchNorm module), made once per case. */
interface Consts {
  weight?: tf.Tensor | undefined;
  bias?: tf.Tensor | undefined;
  bn?: qb.nn.BatchNorm2d | undefined;
  slope?: tf.Tensor | undefined;
  mask?: tf.Tensor | undefined;
}
type Run = (xs: tf.Tensor[], k: Consts) => tf.Tensor;

export function constsOf(c: Case): Consts {
  return {
    weight: c.weight && ten(c.weight),
    bias: c.bias && ten(c.bias),
    bn: c.scale && c.shift ? batchNormOf(ten(c.scale), ten(c.shift)) : undefined,
    slope: c.slope && ten(c.slope),
    mask: (c.mask ?? c.cond) && ten((c.mask ?? c.cond) as T),
  };
}
export const disposeConsts = (k: Consts) => {
  tf.dispose([k.weight, k.bias, k.slope, k.mask].filter((t): t is tf.Tensor => t !== undefined));
  k.bn?.dispose();
};
/**
 * The golden cases of one-input ops called with PyTorch's defaults (`mish`, `gelu`, ...): the case
 * named after an entry's `qb.F` function (snake_case) runs that function. A new activation needs
 * its golden case only.
 */
const DEFAULT_CALLS: Record<string, [string, Run]> = Object.fromEntries(
  allOps()
    .filter((d) => d.torch !== undefined && (d.torch.args ?? []).every((a) => a.default !== undefined))
    .map((d) => {
      const fn = (F as unknown as Record<string, (x: tf.Tensor) => tf.Tensor>)[(d.torch as TorchApi).fn];
      return [callName(d), [d.type, ([a]: tf.Tensor[]) => fn(a)]];
    }),
);

/** Each golden case: the op type it exercises and the qb.F call that reproduces it. */
export const RUNS: Record<string, [string, Run]> = {
  ...DEFAULT_CALLS,
  mul: ["Mul", ([a, b]) => F.mul(a, b)],
  add: ["Add", ([a, b]) => F.add(a, b)],
  sub: ["Sub", ([a, b]) => F.sub(a, b)],
  div: ["Div", ([a, b]) => F.div(a, b)],
  relu6: ["Clip", ([a]) => F.relu6(a)],
  clip: ["Clip", ([a]) => F.clip(a, -1, 0.5)],
  hardtanh: ["Clip", ([a]) => F.hardtanh(a)],
  hardsigmoid_paddle: ["HardSigmoid", ([a]) => F.hardsigmoid(a, { alpha: 0.2 })],
  gelu_tanh: ["GELU", ([a]) => F.gelu(a, { approximate: "tanh" })],
  leaky_relu: ["LeakyReLU", ([a]) => F.leakyRelu(a, 0.1)],
  softmax_last: ["Softmax", ([a]) => F.softmax(a, -1)],
  softmax_dim1: ["Softmax", ([a]) => F.softmax(a, 1)],
  pow: ["Pow", ([a]) => F.pow(a, 2)],
  sum: ["Sum", ([a]) => F.sum(a, [2, 3], true)],
  mean: ["Mean", ([a]) => F.mean(a, -1)],
  max: ["MaxReduce", ([a]) => F.max(a, 1)],
  max_pool: ["MaxPool2d", ([a]) => F.maxPool2d(a, 3, { stride: 2, padding: 1 })],
  max_pool_ceil: ["MaxPool2d", ([a]) => F.maxPool2d(a, 2, { stride: 2, ceilMode: true })],
  avg_pool: ["AvgPool2d", ([a]) => F.avgPool2d(a, 3, { stride: 2, padding: 1 })],
  avg_pool_nopad_ceil: [
    "AvgPool2d",
    ([a]) => F.avgPool2d(a, 3, { stride: 2, padding: 1, ceilMode: true, countIncludePad: false }),
  ],
  avg_pool_ceil: ["AvgPool2d", ([a]) => F.avgPool2d(a, 2, { stride: 2, ceilMode: true })],
  adaptive_avg_pool_1: ["AdaptiveAvgPool2d", ([a]) => F.adaptiveAvgPool2d(a, 1)],
  adaptive_avg_pool_3x4: ["AdaptiveAvgPool2d", ([a]) => F.adaptiveAvgPool2d(a, [3, 4])],
  upsample_nearest_2: ["ResizeNearest", ([a]) => F.interpolate(a, { scaleFactor: 2, mode: "nearest" })],
  upsample_nearest_size: ["ResizeNearest", ([a]) => F.interpolate(a, { size: [7, 9], mode: "nearest" })],
  upsample_bilinear: ["ResizeBilinear", ([a]) => F.interpolate(a, { scaleFactor: 2, mode: "bilinear" })],
  upsample_bilinear_ac: [
    "ResizeBilinear",
    ([a]) => F.interpolate(a, { size: [9, 11], mode: "bilinear", alignCorners: true }),
  ],
  downsample_bilinear: ["ResizeBilinear", ([a]) => F.interpolate(a, { size: [3, 4], mode: "bilinear" })],
  transpose: ["Transpose", ([a]) => F.permute(a, [0, 2, 3, 1])],
  concat: ["Concat", ([a, b]) => F.concat([a, b], 1)],
  slice: ["Slice", ([a]) => F.slice(a, [1, 0, -4], [3, 2147483647, 2147483647], [1, 2, 3], [1, 2, 1])],
  gather: ["Gather", ([a]) => F.gather(a, [5, 0, 2], 3)],
  expand: ["Expand", ([a]) => F.expand(a, [2, 3, 5, 6])],
  pad: ["Pad", ([a]) => F.pad(a, [1, 2, 0, 1])],
  elu: ["ELU", ([a]) => F.elu(a, 0.7)],
  softplus: ["Softplus", ([a]) => F.softplus(a, { beta: 2, threshold: 3 })],
  prelu: ["PReLU", ([a], k) => F.prelu(a, k.slope as tf.Tensor)],
  prelu_shared: ["PReLU", ([a], k) => F.prelu(a, k.slope as tf.Tensor)],
  maximum: ["Maximum", ([a, b]) => F.maximum(a, b)],
  minimum: ["Minimum", ([a, b]) => F.minimum(a, b)],
  mul_negative_scalar: ["Mul", ([a]) => F.mul(a, -3.5)],
  masked_fill: ["MaskedFill", ([a], k) => F.maskedFill(a, k.mask as tf.Tensor, -7.5)],
  where: ["Where", ([a, b], k) => F.where(k.mask as tf.Tensor, a, b)],
  pixel_shuffle: ["DepthToSpace", ([a]) => F.pixelShuffle(a, 2)],
  depth_to_space_dcr: ["DepthToSpace", ([a]) => F.depthToSpace(a, 2, "DCR")],
  space_to_depth: ["SpaceToDepth", ([a]) => F.spaceToDepth(a, 2)],
  tile: ["Tile", ([a]) => F.tile(a, [2, 1, 3])],
  min_reduce: ["MinReduce", ([a]) => F.min(a, [2, 3], true)],
  log_softmax: ["LogSoftmax", ([a]) => F.logSoftmax(a, 1)],
  instance_norm: [
    "InstanceNorm",
    ([a], k) => F.instanceNorm(a, { weight: k.weight as tf.Tensor, bias: k.bias as tf.Tensor }),
  ],
  grid_sample_bilinear_zeros_0: ["GridSample", ([a, g]) => F.gridSample(a, g)],
  grid_sample_bilinear_border_1: [
    "GridSample",
    ([a, g]) => F.gridSample(a, g, { paddingMode: "border", alignCorners: true }),
  ],
  grid_sample_bilinear_reflection_0: ["GridSample", ([a, g]) => F.gridSample(a, g, { paddingMode: "reflection" })],
  grid_sample_nearest_zeros_0: ["GridSample", ([a, g]) => F.gridSample(a, g, { mode: "nearest" })],
  grid_sample_nearest_reflection_1: [
    "GridSample",
    ([a, g]) => F.gridSample(a, g, { mode: "nearest", paddingMode: "reflection", alignCorners: true }),
  ],
  pad_reflect: ["Pad", ([a]) => F.pad(a, [2, 1, 3, 0], 0, { mode: "reflect" })],
  pad_replicate: ["Pad", ([a]) => F.pad(a, [0, 3, 2, 2], 0, { mode: "replicate" })],
  pad_circular: ["Pad", ([a]) => F.pad(a, [1, 2, 2, 1], 0, { mode: "circular" })],
  split: [
    "Slice",
    ([a]) => {
      const [first, second] = F.split(a, [2, 1], 1);
      first.dispose();
      return second;
    },
  ],
  linear: ["Linear", ([a], k) => F.linear(a, k.weight as tf.Tensor, k.bias as tf.Tensor)],
  linear_in_out: [
    "Linear",
    ([a], k) => F.linear(a, k.weight as tf.Tensor, k.bias as tf.Tensor, { weightLayout: "in_out" }),
  ],
  matmul: ["Matmul", ([a, b]) => F.matmul(a, b)],
  conv: ["Conv2d", ([a], k) => F.conv2d(a, k.weight as tf.Tensor, k.bias as tf.Tensor, { stride: 2, padding: 1 })],
  conv_transpose: [
    "ConvTranspose2d",
    ([a], k) =>
      F.convTranspose2d(a, k.weight as tf.Tensor, k.bias as tf.Tensor, { stride: 2, padding: 1, outputPadding: 1 }),
  ],
  conv_transpose_groups: [
    "ConvTranspose2d",
    ([a], k) =>
      F.convTranspose2d(a, k.weight as tf.Tensor, null, {
        stride: [1, 2],
        padding: [0, 1],
        dilation: [2, 1],
        groups: 3,
      }),
  ],
  batchnorm: ["BatchNorm", ([a], k) => (k.bn as qb.nn.BatchNorm2d).forward(a)],
};

/** A BatchNorm2d computing x · scale + shift per channel (running mean 0, running var 1 − eps). */
function batchNormOf(scale: tf.Tensor, shift: tf.Tensor): qb.nn.BatchNorm2d {
  const bn = new qb.nn.BatchNorm2d(scale.shape[0]);
  bn.weight.assign(scale as tf.Tensor1D);
  bn.bias.assign(shift as tf.Tensor1D);
  tf.tidy(() => bn.running_var.assign(tf.fill([scale.shape[0]], 1 - bn.eps) as tf.Tensor1D));
  tf.dispose([scale, shift]);
  return bn;
}

/** QuantStub per input → the op → DeQuantStub, for the integer-model check. */
export class OneOp extends qb.nn.Module {
  stubs: qb.nn.QuantStub[];
  dequant = new qb.nn.DeQuantStub();
  constructor(
    n: number,
    private readonly run: Run,
    private readonly k: Consts,
  ) {
    super();
    this.stubs = Array.from({ length: n }, () => new qb.nn.QuantStub());
  }
  forward(...xs: tf.Tensor[]): tf.Tensor {
    return this.dequant.forward(
      this.run(
        xs.map((x, i) => this.stubs[i].forward(x)),
        this.k,
      ),
    );
  }
}

export const GOLDEN_CASES = golden.cases;

export function opTypeOf(c: Case): string {
  return RUNS[c.name][0];
}

/** QuantStub per input → the case's op → DeQuantStub, and what frees its constants. */
export function oneOpModel(c: Case): { model: OneOp; dispose: () => void } {
  const k = constsOf(c);
  return { model: new OneOp(c.inputs.length, RUNS[c.name][1], k), dispose: () => disposeConsts(k) };
}
