/**
 * Fused per-tensor fake-quant kernels for the WebAssembly backend. tfjs runs
 * `clamp(round(x * inv), qmin, qmax) * scale` as four passes over memory; these kernels do one
 * pass (SIMD, four floats at a time) on the backend's own memory, with the same float32
 * arithmetic and the same half-to-even rounding (`f32x4.nearest`), so results stay bit-exact.
 *
 * - `fq(src, dst, n, inv, scale, qmin, qmax)`: the fake-quantized tensor.
 * - `err(src, n, inv, scale, qmin, qmax) -> f64`: Σ (fq(x) - x)², the difference in float32 and
 *   the square and sum in float64 (what the MSE observer compares across candidates).
 *
 * Used only when the active backend is wasm; other backends take the tfjs-op path.
 */
import * as tf from "@tensorflow/tfjs";
import { assemble, op, simd, T } from "./assembler";
import { errors } from "../messages";

interface Exports {
  fq(src: number, dst: number, n: number, inv: number, scale: number, qmin: number, qmax: number): void;
  err(src: number, n: number, inv: number, scale: number, qmin: number, qmax: number): number;
}

/** The parts of the WebAssembly API used here (the global exists in Node; lib.dom is not loaded). */
interface WasmApi {
  Memory: new (...a: never[]) => object;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (m: object, imports: object) => { exports: unknown };
}
const WA = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

interface WasmBackendLike {
  wasm: { asm: { memory: object } };
  dataIdMap: { get(id: object): { memoryOffset: number } | undefined };
  makeOutput(shape: number[], dtype: "float32"): tf.TensorInfo;
}

/** Quantizes the f32x4 on the stack: nearest(v * inv) clamped to [qmin, qmax] (locals vinv, vmin, vmax). */
function quantizeVec(vinv: number, vmin: number, vmax: number): number[][] {
  return [op.get(vinv), simd.f32x4Mul, simd.f32x4Nearest, op.get(vmin), simd.f32x4Max, op.get(vmax), simd.f32x4Min];
}

function quantizeScalar(inv: number, qmin: number, qmax: number): number[][] {
  return [op.get(inv), op.f32Mul, op.f32Nearest, op.get(qmin), op.f32Max, op.get(qmax), op.f32Min];
}

function build(): Uint8Array {
  // fq locals: 0 src, 1 dst, 2 n, 3 inv, 4 scale, 5 qmin, 6 qmax | 7 i (byte offset), 8 vecEnd, 9 end, 10..13 vinv vs vmin vmax
  const fq = {
    name: "fq",
    params: [T.i32, T.i32, T.i32, T.f32, T.f32, T.f32, T.f32],
    results: [],
    locals: [T.i32, T.i32, T.i32, T.v128, T.v128, T.v128, T.v128],
    body: [
      op.get(3),
      simd.f32x4Splat,
      op.set(10),
      op.get(4),
      simd.f32x4Splat,
      op.set(11),
      op.get(5),
      simd.f32x4Splat,
      op.set(12),
      op.get(6),
      simd.f32x4Splat,
      op.set(13),
      op.get(2),
      op.i32(2),
      op.i32Shl,
      op.set(9), // end = n * 4
      op.get(2),
      op.i32(-4),
      op.i32And,
      op.i32(2),
      op.i32Shl,
      op.set(8), // vecEnd = (n & ~3) * 4
      op.block,
      op.loop,
      op.get(7),
      op.get(8),
      op.i32GeU,
      op.brIf(1),
      op.get(1),
      op.get(7),
      op.i32Add, // dst address
      op.get(0),
      op.get(7),
      op.i32Add,
      simd.load,
      ...quantizeVec(10, 12, 13),
      op.get(11),
      simd.f32x4Mul,
      simd.store,
      op.get(7),
      op.i32(16),
      op.i32Add,
      op.set(7),
      op.br(0),
      op.end,
      op.end,
      op.block,
      op.loop,
      op.get(7),
      op.get(9),
      op.i32GeU,
      op.brIf(1),
      op.get(1),
      op.get(7),
      op.i32Add,
      op.get(0),
      op.get(7),
      op.i32Add,
      op.f32Load,
      ...quantizeScalar(3, 5, 6),
      op.get(4),
      op.f32Mul,
      op.f32Store,
      op.get(7),
      op.i32(4),
      op.i32Add,
      op.set(7),
      op.br(0),
      op.end,
      op.end,
    ],
  };
  // err locals: 0 src, 1 n, 2 inv, 3 scale, 4 qmin, 5 qmax | 6 i, 7 vecEnd, 8 end, 9 vinv, 10 vs, 11 vmin, 12 vmax, 13 acc(f64x2), 14 x(v128), 15 d(v128), 16 xs(f32), 17 ds(f64), 18 total(f64)
  const err = {
    name: "err",
    params: [T.i32, T.i32, T.f32, T.f32, T.f32, T.f32],
    results: [T.f64],
    locals: [T.i32, T.i32, T.i32, T.v128, T.v128, T.v128, T.v128, T.v128, T.v128, T.v128, T.f32, T.f64, T.f64],
    body: [
      op.get(2),
      simd.f32x4Splat,
      op.set(9),
      op.get(3),
      simd.f32x4Splat,
      op.set(10),
      op.get(4),
      simd.f32x4Splat,
      op.set(11),
      op.get(5),
      simd.f32x4Splat,
      op.set(12),
      op.f64(0),
      simd.f64x2Splat,
      op.set(13),
      op.get(1),
      op.i32(2),
      op.i32Shl,
      op.set(8),
      op.get(1),
      op.i32(-4),
      op.i32And,
      op.i32(2),
      op.i32Shl,
      op.set(7),
      op.block,
      op.loop,
      op.get(6),
      op.get(7),
      op.i32GeU,
      op.brIf(1),
      op.get(0),
      op.get(6),
      op.i32Add,
      simd.load,
      op.tee(14),
      ...quantizeVec(9, 11, 12),
      op.get(10),
      simd.f32x4Mul,
      op.get(14),
      simd.f32x4Sub,
      op.set(15),
      // acc += promote(d[0:2])² + promote(d[2:4])²
      op.get(13),
      op.get(15),
      simd.f64x2PromoteLow,
      op.get(15),
      simd.f64x2PromoteLow,
      simd.f64x2Mul,
      simd.f64x2Add,
      op.set(13),
      op.get(13),
      op.get(15),
      op.get(15),
      simd.highToLow,
      simd.f64x2PromoteLow,
      op.get(15),
      op.get(15),
      simd.highToLow,
      simd.f64x2PromoteLow,
      simd.f64x2Mul,
      simd.f64x2Add,
      op.set(13),
      op.get(6),
      op.i32(16),
      op.i32Add,
      op.set(6),
      op.br(0),
      op.end,
      op.end,
      op.get(13),
      simd.f64x2Extract(0),
      op.get(13),
      simd.f64x2Extract(1),
      op.f64Add,
      op.set(18),
      op.block,
      op.loop,
      op.get(6),
      op.get(8),
      op.i32GeU,
      op.brIf(1),
      op.get(0),
      op.get(6),
      op.i32Add,
      op.f32Load,
      op.tee(16),
      ...quantizeScalar(2, 4, 5),
      op.get(3),
      op.f32Mul,
      op.get(16),
      op.f32Sub,
      op.f64Promote,
      op.tee(17),
      op.get(17),
      op.f64Mul,
      op.get(18),
      op.f64Add,
      op.set(18),
      op.get(6),
      op.i32(4),
      op.i32Add,
      op.set(6),
      op.br(0),
      op.end,
      op.end,
      op.get(18),
    ],
  };
  return assemble([fq, err]);
}

let cached: { exports: Exports; memory: object } | null = null;

function kernels(): { exports: Exports; backend: WasmBackendLike } | null {
  if (tf.getBackend() !== "wasm") return null;
  const backend = tf.backend() as unknown as WasmBackendLike;
  const memory = backend.wasm?.asm?.memory;
  if (!(memory instanceof WA.Memory)) return null;
  if (cached === null || cached.memory !== memory) {
    const module = new WA.Module(build());
    const instance = new WA.Instance(module, { env: { memory } });
    cached = { exports: instance.exports as unknown as Exports, memory };
  }
  return { exports: cached.exports, backend };
}

function offsetOf(backend: WasmBackendLike, t: tf.TensorInfo): number {
  const d = backend.dataIdMap.get(t.dataId);
  if (d === undefined) throw errors.internal("fused fake-quant", "tensor data is not on the wasm backend");
  return d.memoryOffset;
}

/** Fused per-tensor fake quantization, or null when the wasm kernels are unavailable. */
export function fusedFakeQuantize(
  x: tf.Tensor,
  scale: number,
  inv: number,
  qmin: number,
  qmax: number,
): tf.Tensor | null {
  const k = kernels();
  if (k === null) return null;
  const out = k.backend.makeOutput(x.shape, "float32");
  k.exports.fq(offsetOf(k.backend, x), offsetOf(k.backend, out), x.size, inv, scale, qmin, qmax);
  return tf.engine().makeTensorFromTensorInfo(out);
}

/**
 * Σ (fq(x) - x)² over `count` elements of `x` from element `start` (default: all) in one pass,
 * or null when the wasm kernels are unavailable.
 */
export function fusedQuantError(
  x: tf.Tensor,
  scale: number,
  inv: number,
  qmin: number,
  qmax: number,
  start = 0,
  count = x.size,
): number | null {
  const k = kernels();
  if (k === null) return null;
  return k.exports.err(offsetOf(k.backend, x) + 4 * start, count, inv, scale, qmin, qmax);
}

/** Whether the fused kernels run on the active backend. */
export function fusedKernelsAvailable(): boolean {
  return kernels() !== null;
}
