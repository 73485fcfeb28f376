/**
 * onnxruntime-node sessions, run synchronously: the native binding computes on the calling
 * thread, so quantbook's synchronous tools (sensitivity, statistics) keep their shape. Threads and
 * execution providers come from `setEngineOptions`.
 */
import * as os from "node:os";
import { errors } from "../../messages";
import { OnnxBuilder } from "../../ops/lowering";

interface OrtTensor {
  type: string;
  dims: readonly number[];
  data: unknown;
}
interface NativeSession {
  loadModel(buffer: ArrayBufferLike, offset: number, length: number, options: object): void;
  run(feeds: Record<string, OrtTensor>, fetches: Record<string, null>, options: object): Record<string, OrtTensor>;
  dispose(): void;
}
interface OrtModule {
  Tensor: new (type: string, data: ArrayLike<number> | Uint8Array, dims: readonly number[]) => OrtTensor;
  binding: { InferenceSession: new () => NativeSession; listSupportedBackends(): { name: string }[] };
}

let ortModule: OrtModule | null | undefined;
let loadError = "";

/** onnxruntime-node, or null when it does not load here (then the engine is tfjs). */
export function loadOrt(): OrtModule | null {
  if (ortModule !== undefined) return ortModule;
  try {
    const ort = require("onnxruntime-node") as { Tensor: OrtModule["Tensor"] };
    const b = require("onnxruntime-node/dist/binding") as { binding: OrtModule["binding"]; initOrt(): void };
    b.initOrt();
    ortModule = { Tensor: ort.Tensor, binding: b.binding };
  } catch (e) {
    const why = e instanceof Error ? e.message.split("\n")[0] : String(e);
    // an optional peer: quantbook does not install it (its install script downloads GPU libraries from outside the npm registry)
    loadError = /Cannot find module 'onnxruntime-node/.test(why)
      ? "onnxruntime-node is not installed; for the fast engine install it with `npm install onnxruntime-node --ignore-scripts` (its CPU binaries are in the package; the skipped install script would download GPU libraries)"
      : why;
    ortModule = null;
  }
  return ortModule;
}

export function ortLoadError(): string {
  return loadError;
}

export interface EngineOptions {
  /** Threads one run uses (default: the machine's cores). */
  intraOpNumThreads: number;
  /** Execution providers in order of preference, e.g. ["cuda", "cpu"] (default ["cpu"]). */
  executionProviders: string[];
  /** onnxruntime's graph optimization level (default "basic"; the fake-quantizers' scales are inputs, so no level can fold them). */
  graphOptimizationLevel: "disabled" | "basic" | "extended" | "all";
}

const defaults = (): EngineOptions => ({
  intraOpNumThreads: Math.max(
    1,
    typeof os.availableParallelism === "function" ? os.availableParallelism() : os.cpus().length,
  ),
  executionProviders: ["cpu"],
  // measured on ResNet-18 with its weights fed as inputs: "basic" 1.35× the plain float graph at two threads, "all" 2.0×
  graphOptimizationLevel: "basic",
});
let options: EngineOptions = defaults();
/** Bumped by every option change, so sessions made under old options are rebuilt. */
let generation = 0;

/**
 * Sets how the onnxruntime engine runs: threads, execution providers, optimization level.
 *
 * ```ts
 * qb.backend.setEngineOptions({ intraOpNumThreads: 4 });
 * qb.backend.setEngineOptions({ executionProviders: ["cuda", "cpu"] });   // onnxruntime-node's CUDA build
 * ```
 */
export function setEngineOptions(o: Partial<EngineOptions>): EngineOptions {
  const next = { ...options, ...o };
  if (!Number.isInteger(next.intraOpNumThreads) || next.intraOpNumThreads < 1) {
    throw errors.invalidArgument(
      "setEngineOptions",
      `intraOpNumThreads ${next.intraOpNumThreads}`,
      "pass a whole number of threads ≥ 1",
    );
  }
  if (!Array.isArray(next.executionProviders) || next.executionProviders.length === 0) {
    throw errors.invalidArgument(
      "setEngineOptions",
      "executionProviders is empty",
      'pass e.g. ["cpu"] or ["cuda", "cpu"]',
    );
  }
  const ort = loadOrt();
  if (ort !== null) {
    const have = ort.binding.listSupportedBackends().map((p) => p.name);
    const missing = next.executionProviders.filter((p) => !have.includes(p));
    if (missing.length > 0) {
      throw errors.invalidArgument(
        "setEngineOptions",
        `execution provider ${missing.join(", ")} is not in this onnxruntime-node build (it has ${have.join(", ")})`,
        missing.includes("cuda")
          ? 'install onnxruntime-node\'s CUDA build (npm install onnxruntime-node --onnxruntime-node-install=cuda12 on a machine with an NVIDIA driver), or use ["cpu"]'
          : `use one of ${have.join(", ")}`,
      );
    }
  }
  if (ort !== null && next.executionProviders.some((p) => p !== "cpu")) {
    // a provider listed by the build may still lack its libraries (CUDA's are downloaded at install): try it
    try {
      new OrtSession(probeModel(), next).dispose();
    } catch (e) {
      throw errors.invalidArgument(
        "setEngineOptions",
        `execution providers ${next.executionProviders.join(", ")} do not load (${e instanceof Error ? e.message.split("\n")[0] : String(e)})`,
        next.executionProviders.includes("cuda")
          ? 'install onnxruntime-node\'s CUDA build (npm install onnxruntime-node --onnxruntime-node-install=cuda12 on a machine with an NVIDIA driver and CUDA 12), or use ["cpu"]'
          : 'use ["cpu"]',
      );
    }
  }
  options = next;
  generation++;
  return { ...options };
}

export function engineOptions(): EngineOptions {
  return { ...options, executionProviders: options.executionProviders.slice() };
}

export function optionsGeneration(): number {
  return generation;
}

/** A one-node graph (Identity) to try session options on. */
function probeModel(): Uint8Array {
  const b = new OnnxBuilder();
  b.addInput("x", "float32", [1]);
  b.named("Identity", ["x"], "y");
  b.addOutput("y");
  return b.encode("probe");
}

export type Feed =
  { type: "float32"; data: Float32Array; dims: number[] } | { type: "bool"; data: Uint8Array; dims: number[] };

/** One loaded model. */
export class OrtSession {
  private readonly native: NativeSession;
  private readonly ort: OrtModule;
  readonly generation = generation;

  constructor(bytes: Uint8Array, opts: EngineOptions = options) {
    const ort = loadOrt();
    if (ort === null)
      throw errors.invalidArgument(
        "engine",
        `onnxruntime-node does not load (${loadError})`,
        'reinstall it (npm ci), or use { engine: "tfjs" }',
      );
    this.ort = ort;
    this.native = new ort.binding.InferenceSession();
    this.native.loadModel(bytes.buffer, bytes.byteOffset, bytes.byteLength, {
      intraOpNumThreads: opts.intraOpNumThreads,
      interOpNumThreads: 1,
      executionMode: "sequential",
      graphOptimizationLevel: opts.graphOptimizationLevel,
      executionProviders: opts.executionProviders,
    });
  }

  run(feeds: Record<string, Feed>, fetches: string[]): Record<string, { data: Float32Array; dims: number[] }> {
    const f: Record<string, OrtTensor> = {};
    for (const [k, v] of Object.entries(feeds)) f[k] = new this.ort.Tensor(v.type, v.data, v.dims);
    const out = this.native.run(f, Object.fromEntries(fetches.map((n) => [n, null])), {});
    const r: Record<string, { data: Float32Array; dims: number[] }> = {};
    for (const n of fetches) r[n] = { data: out[n].data as Float32Array, dims: out[n].dims.slice() };
    return r;
  }

  private disposed = false;

  /** Frees the native session (once; later calls do nothing). */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.native.dispose();
  }
}
