/**
 * torchvision's ResNet-18, written with qb.nn: the same module tree and state-dict keys
 * (`layer1.0.conv1.weight`, `layer2.0.downsample.0.weight`, ...), so a torchvision checkpoint loads
 * as it is; a QuantStub and DeQuantStub (no parameters) at the ends.
 */
import type * as tf from "@tensorflow/tfjs";
import * as nn from "../nn";
import * as F from "../nn/functional";

const conv3x3 = (i: number, o: number, stride = 1) => new nn.Conv2d(i, o, 3, { stride, padding: 1, bias: false });

export class BasicBlock extends nn.Module {
  conv1: nn.Conv2d;
  bn1: nn.BatchNorm2d;
  relu = new nn.ReLU();
  conv2: nn.Conv2d;
  bn2: nn.BatchNorm2d;
  downsample: nn.Sequential | null;

  constructor(inPlanes: number, planes: number, stride = 1) {
    super();
    this.conv1 = conv3x3(inPlanes, planes, stride);
    this.bn1 = new nn.BatchNorm2d(planes);
    this.conv2 = conv3x3(planes, planes);
    this.bn2 = new nn.BatchNorm2d(planes);
    this.downsample =
      stride !== 1 || inPlanes !== planes
        ? new nn.Sequential(new nn.Conv2d(inPlanes, planes, 1, { stride, bias: false }), new nn.BatchNorm2d(planes))
        : null;
  }

  forward(x: tf.Tensor): tf.Tensor {
    const out = this.bn2.forward(this.conv2.forward(this.relu.forward(this.bn1.forward(this.conv1.forward(x)))));
    const identity = this.downsample ? this.downsample.forward(x) : x;
    return this.relu.forward(F.add(out, identity));
  }
}

export class ResNet18 extends nn.Module {
  quant = new nn.QuantStub();
  conv1 = new nn.Conv2d(3, 64, 7, { stride: 2, padding: 3, bias: false });
  bn1 = new nn.BatchNorm2d(64);
  relu = new nn.ReLU();
  maxpool = new nn.MaxPool2d(3, { stride: 2, padding: 1 });
  layer1 = new nn.Sequential(new BasicBlock(64, 64), new BasicBlock(64, 64));
  layer2 = new nn.Sequential(new BasicBlock(64, 128, 2), new BasicBlock(128, 128));
  layer3 = new nn.Sequential(new BasicBlock(128, 256, 2), new BasicBlock(256, 256));
  layer4 = new nn.Sequential(new BasicBlock(256, 512, 2), new BasicBlock(512, 512));
  avgpool = new nn.AdaptiveAvgPool2d(1);
  fc: nn.Linear;
  dequant = new nn.DeQuantStub();

  constructor(numClasses = 1000) {
    super();
    this.fc = new nn.Linear(512, numClasses);
  }

  forward(x: tf.Tensor): tf.Tensor {
    let y = this.maxpool.forward(this.relu.forward(this.bn1.forward(this.conv1.forward(this.quant.forward(x)))));
    for (const layer of [this.layer1, this.layer2, this.layer3, this.layer4]) y = layer.forward(y);
    return this.dequant.forward(this.fc.forward(F.flatten(this.avgpool.forward(y), 1)));
  }
}
