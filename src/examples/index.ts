export { SmallModel, SmallModelMulSum } from "./articleModel";
export { GatedMulSum } from "./gatedModel";
export { fixturePath } from "./fixtures";
export { ResNet18, BasicBlock } from "./resnet";
export { MobileNetV3Small, InvertedResidual, SqueezeExcitation, makeDivisible } from "./mobilenetv3";
export { deterministicInit, deterministicValues } from "./deterministicInit";
