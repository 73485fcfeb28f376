/**
 * torchvision's MobileNetV3-Small, written with qb.nn: the same module tree and state-dict keys
 * (`features.1.block.1.fc1.weight`, `classifier.3.weight`, ...) and BatchNorm eps 0.001, so a
 * torchvision checkpoint loads as it is; a QuantStub and DeQuantStub at the ends.
 */
import type * as tf from "@tensorflow/tfjs";
import * as nn from "../nn";
import * as F from "../nn/functional";

/** torchvision's _make_divisible: round to a multiple of 8, never more than 10% down. */
export function makeDivisible(v: number, divisor = 8): number {
  let n = Math.max(divisor, Math.floor((v + divisor / 2) / divisor) * divisor);
  if (n < 0.9 * v) n += divisor;
  return n;
}

type Act = "RE" | "HS" | null;
const activation = (a: Act): nn.Module[] => (a === "RE" ? [new nn.ReLU()] : a === "HS" ? [new nn.Hardswish()] : []);

/** Conv2d (no bias) + BatchNorm2d (eps 0.001) + activation: torchvision's Conv2dNormActivation. */
function convBnAct(i: number, o: number, k: number, stride: number, groups: number, act: Act): nn.Sequential {
  const bn = new nn.BatchNorm2d(o, 0.001);
  return new nn.Sequential(
    new nn.Conv2d(i, o, k, { stride, padding: (k - 1) / 2, groups, bias: false }),
    bn,
    ...activation(act),
  );
}

export class SqueezeExcitation extends nn.Module {
  avgpool = new nn.AdaptiveAvgPool2d(1);
  fc1: nn.Conv2d;
  fc2: nn.Conv2d;
  activation = new nn.ReLU();
  scale_activation = new nn.Hardsigmoid();

  constructor(channels: number, squeeze: number) {
    super();
    this.fc1 = new nn.Conv2d(channels, squeeze, 1);
    this.fc2 = new nn.Conv2d(squeeze, channels, 1);
  }

  forward(x: tf.Tensor): tf.Tensor {
    const s = this.scale_activation.forward(
      this.fc2.forward(this.activation.forward(this.fc1.forward(this.avgpool.forward(x)))),
    );
    return F.mul(s, x);
  }
}

export class InvertedResidual extends nn.Module {
  block: nn.Sequential;
  private readonly residual: boolean;

  constructor(inC: number, k: number, exp: number, outC: number, se: boolean, act: Act, stride: number) {
    super();
    const layers: nn.Module[] = [];
    if (exp !== inC) layers.push(convBnAct(inC, exp, 1, 1, 1, act));
    layers.push(convBnAct(exp, exp, k, stride, exp, act));
    if (se) layers.push(new SqueezeExcitation(exp, makeDivisible(Math.floor(exp / 4), 8)));
    layers.push(convBnAct(exp, outC, 1, 1, 1, null));
    this.block = new nn.Sequential(...layers);
    this.residual = stride === 1 && inC === outC;
  }

  forward(x: tf.Tensor): tf.Tensor {
    const y = this.block.forward(x);
    return this.residual ? F.add(y, x) : y;
  }
}

/** torchvision's inverted-residual settings for "mobilenet_v3_small": in, kernel, expanded, out, SE, activation, stride. */
const SMALL: [number, number, number, number, boolean, Act, number][] = [
  [16, 3, 16, 16, true, "RE", 2],
  [16, 3, 72, 24, false, "RE", 2],
  [24, 3, 88, 24, false, "RE", 1],
  [24, 5, 96, 40, true, "HS", 2],
  [40, 5, 240, 40, true, "HS", 1],
  [40, 5, 240, 40, true, "HS", 1],
  [40, 5, 120, 48, true, "HS", 1],
  [48, 5, 144, 48, true, "HS", 1],
  [48, 5, 288, 96, true, "HS", 2],
  [96, 5, 576, 96, true, "HS", 1],
  [96, 5, 576, 96, true, "HS", 1],
];

export class MobileNetV3Small extends nn.Module {
  quant = new nn.QuantStub();
  features: nn.Sequential;
  avgpool = new nn.AdaptiveAvgPool2d(1);
  classifier: nn.Sequential;
  dequant = new nn.DeQuantStub();

  constructor(numClasses = 1000) {
    super();
    this.features = new nn.Sequential(
      convBnAct(3, 16, 3, 2, 1, "HS"),
      ...SMALL.map(([i, k, e, o, se, act, s]) => new InvertedResidual(i, k, e, o, se, act, s)),
      convBnAct(96, 576, 1, 1, 1, "HS"),
    );
    this.classifier = new nn.Sequential(
      new nn.Linear(576, 1024),
      new nn.Hardswish(),
      new nn.Dropout(0.2),
      new nn.Linear(1024, numClasses),
    );
  }

  forward(x: tf.Tensor): tf.Tensor {
    const f = this.avgpool.forward(this.features.forward(this.quant.forward(x)));
    return this.dequant.forward(this.classifier.forward(F.flatten(f, 1)));
  }
}
