export { Module, cloneModule, type LoadResult } from "./module";
export { Linear } from "./linear";
export { Conv2d, type Conv2dOptions } from "./conv";
export { BatchNorm2d, Identity } from "./batchnorm";
export { LayerNorm } from "./layernorm";
export { ReLU, Sigmoid, QuantStub, DeQuantStub } from "./layers";
export { manualSeed } from "./init";
export * as F from "./functional";
