export { Module, cloneModule, type LoadResult } from "./module";
export { Linear } from "./linear";
export { LayerNorm } from "./layernorm";
export { ReLU, Sigmoid, QuantStub, DeQuantStub } from "./layers";
export { manualSeed } from "./init";
export * as F from "./functional";
