/**
 * Folds BatchNorm2d into the Conv2d before it, as deployment toolchains do before quantization:
 * w' = w · s[o], b' = b · s[o] + t[o] with s, t the BatchNorm's per-channel scale and shift. The
 * BatchNorm becomes an Identity, so the fused model has one op (and one quantization) fewer.
 *
 * ```ts
 * const fused = qb.transforms.fuseConvBn(model, [["conv1", "bn1"], ["conv2", "bn2"]]);
 * ```
 */
import * as tf from "@tensorflow/tfjs";
import { BatchNorm2d, Identity } from "../nn/batchnorm";
import { Conv2d } from "../nn/conv";
import { cloneModule, type Module } from "../nn/module";
import { replaceChild } from "./replace";
import { errors } from "../messages";

export function fuseConvBn<T extends Module>(model: T, pairs: [string, string][]): T {
  const modules = new Map(model.namedModules());
  for (const [convPath, bnPath] of pairs) {
    const conv = modules.get(convPath);
    const bn = modules.get(bnPath);
    if (!(conv instanceof Conv2d)) throw errors.wrongModule("fuseConvBn", convPath, conv, "Conv2d");
    if (!(bn instanceof BatchNorm2d)) throw errors.wrongModule("fuseConvBn", bnPath, bn, "BatchNorm2d");
    if (bn.numFeatures !== conv.outChannels) {
      throw errors.shapeMismatch(
        "fuseConvBn",
        `${bnPath} has ${bn.numFeatures} channels but ${convPath} outputs ${conv.outChannels}`,
        `${conv.outChannels} channels in ${bnPath}`,
        "fuse a BatchNorm2d with the Conv2d right before it",
      );
    }
  }
  const copy = cloneModule(model);
  const copies = new Map(copy.namedModules());
  for (const [convPath, bnPath] of pairs) {
    const conv = copies.get(convPath) as Conv2d;
    const bn = copies.get(bnPath) as BatchNorm2d;
    tf.tidy(() => {
      const { scale, shift } = bn.affine();
      conv.weight.assign(tf.mul(conv.weight, tf.reshape(scale, [-1, 1, 1, 1])));
      const bias = conv.bias ? tf.add(tf.mul(conv.bias, scale), shift) : shift;
      if (conv.bias) conv.bias.assign(bias);
      else conv.bias = tf.variable(bias);
    });
    replaceChild(copy, bnPath, new Identity());
  }
  return copy;
}
