export { Module, cloneModule, type LoadResult } from "./module";
export { Linear } from "./linear";
export { Conv2d, type Conv2dOptions } from "./conv";
export { BatchNorm2d, Identity } from "./batchnorm";
export { LayerNorm } from "./layernorm";
export {
  QuantStub,
  DeQuantStub,
  ReLU6,
  Hardtanh,
  PReLU,
  MaxPool2d,
  AvgPool2d,
  AdaptiveAvgPool2d,
  Upsample,
  Flatten,
  Pad2d,
  ZeroPad2d,
  ReflectionPad2d,
  ReplicationPad2d,
  Dropout,
} from "./layers";
/** The layers of one-input ops, generated from their registry entries (ReLU, Sigmoid, GELU, Softmax, ...). */
export * from "./generated/layers";
export { ConvTranspose2d, type ConvTranspose2dOptions } from "./convTranspose";
export { Sequential } from "./sequential";
export { LSTM, GRU, RNN, Recurrent, type RecurrentCell, type RecurrentOptions } from "./recurrent";
export { manualSeed } from "./init";
