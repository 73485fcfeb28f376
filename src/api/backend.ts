/**
 * `qb.backend`: where tensors compute. The tfjs backend (`init`, `active`: wasm, tensorflow or
 * cpu) and the engine that runs prepared models (`engine`: onnxruntime or tfjs).
 */
export { initBackend as init, activeBackend as active, type BackendName } from "../backend";
export { engine, setEngineOptions, type EngineOptions, type EngineDecision } from "../workflow/engine";
