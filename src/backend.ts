/**
 * Tensor backend selection.
 *
 * Order of preference: the backend named by `QUANTBOOK_BACKEND` (wasm | tensorflow | cpu), else
 * `@tensorflow/tfjs-node` when it is installed and loads (an optional dependency, aliased
 * `tfjs-node-native`, whose install needs a download that fails on registry-only machines), else the WebAssembly backend,
 * else the pure-JS cpu backend.
 *
 * ```ts
 * await qb.backend.init();          // idempotent
 * qb.backend.active();              // "wasm"
 * ```
 */
import * as tf from "@tensorflow/tfjs";
import { errors } from "./messages";

export type BackendName = "tensorflow" | "wasm" | "cpu";

let initialized: Promise<BackendName> | null = null;
/** The backend initBackend settled on (null until it has). */
let chosen: BackendName | null = null;

function tryRequire(name: string): boolean {
  try {
    require(name);
    return true;
  } catch {
    return false;
  }
}

async function activate(name: BackendName): Promise<boolean> {
  // the optional native package is installed under the alias "tfjs-node-native", because
  // danfojs-node's own dependency on @tensorflow/tfjs-node is overridden to plain tfjs
  if (name === "tensorflow" && !tryRequire("tfjs-node-native")) return false;
  if (name === "wasm" && !tryRequire("@tensorflow/tfjs-backend-wasm")) return false;
  try {
    return await tf.setBackend(name);
  } catch {
    return false;
  }
}

async function choose(): Promise<BackendName> {
  const wanted = process.env.QUANTBOOK_BACKEND;
  if (wanted !== undefined && wanted !== "") {
    if (wanted !== "tensorflow" && wanted !== "wasm" && wanted !== "cpu") {
      throw errors.notOneOf("QUANTBOOK_BACKEND", "backend", wanted, ["wasm", "tensorflow", "cpu"]);
    }
    if (!(await activate(wanted))) {
      throw errors.backend(
        `QUANTBOOK_BACKEND=${wanted}: that backend did not load`,
        wanted === "tensorflow"
          ? "@tensorflow/tfjs-node is optional and its native library may not be installed; use wasm instead"
          : "unset QUANTBOOK_BACKEND to choose one automatically",
      );
    }
    return wanted;
  }
  for (const name of ["tensorflow", "wasm", "cpu"] as const) {
    if (await activate(name)) return name;
  }
  throw errors.backend(
    "no tensor backend could be activated (tried tensorflow, wasm, cpu)",
    "reinstall quantbook's dependencies (npm ci); the cpu backend ships with @tensorflow/tfjs",
  );
}

/**
 * tfjs's pure-JS backend greets its first tensor in Node with a banner asking to install
 * tfjs-node (a download this kind of machine cannot make). quantbook chooses its own backend
 * (`ensureBackend` below), so the banner is only noise: create the cpu backend now, quietly.
 */
function quietCpuBackend(): void {
  try {
    // only when nothing chose a backend yet (a script may have set its own before importing us)
    if ((tf.engine() as unknown as { backendName: string | null }).backendName != null) return;
    const cpu = tf.findBackend("cpu") as unknown as { firstUse?: boolean } | null;
    if (cpu === null) return;
    cpu.firstUse = false;
    // make this instance the active one (setBackend is synchronous for a backend already created);
    // otherwise tfjs would build a second, noisy one on the first tensor
    void tf.setBackend("cpu");
  } catch {
    // the backend's internals changed: the banner may show, nothing else is affected
  }
}
quietCpuBackend();

/** Selects and readies the tensor backend once; later calls return the same choice. */
export function initBackend(): Promise<BackendName> {
  if (initialized === null) {
    initialized = choose().then(async (name) => {
      await tf.ready();
      chosen = name;
      return name;
    });
    initialized.catch(() => {
      initialized = null;
    });
  }
  return initialized;
}

/**
 * The fast backend without asking: quantbook's asynchronous entry points (loadOnnx, calibrate,
 * planMixedPrecision, qat, the file loaders) call this first, so a script that never calls
 * `initBackend()` still runs on wasm rather than tfjs's pure-JS fallback. Tensors a script made
 * before are moved to the chosen backend when next used.
 */
export async function ensureBackend(): Promise<void> {
  await initBackend();
}

/**
 * The backend quantbook computes with: once chosen (the first `initBackend`, or the first
 * quantbook call that needs one), the one running tensor ops; before that, the one it will
 * choose (`QUANTBOOK_BACKEND`, else tfjs-node if it loads, else wasm) — never undefined.
 */
export function activeBackend(): string {
  if (chosen !== null) return tf.getBackend() ?? chosen;
  const wanted = process.env.QUANTBOOK_BACKEND;
  if (wanted === "tensorflow" || wanted === "wasm" || wanted === "cpu") return wanted;
  for (const [name, pkg] of [
    ["tensorflow", "tfjs-node-native"],
    ["wasm", "@tensorflow/tfjs-backend-wasm"],
  ] as const) {
    if (tryRequire(pkg)) return name;
  }
  return "cpu";
}

/**
 * Puts the tensor engine back into its between-calls state after code was stopped in the middle
 * (an interrupt breaks out of `tf.tidy` without running its cleanup): open scopes are closed,
 * disposing what they tracked, and the kernel / gradient depth counters go back to zero.
 * Closes only the scopes above `depth` (what a call opened), so a caller's own tidy stays open.
 * Returns how many scopes were left open.
 */
type EngineState = { state: { scopeStack: unknown[]; kernelDepth: number; gradientDepth: number }; endScope(): void };

/** How many tensor scopes (`tf.tidy`) are open now. */
export function scopeDepth(): number {
  return (tf.engine() as unknown as EngineState).state.scopeStack.length;
}

export function repairEngine(depth = 0): number {
  const engine = tf.engine() as unknown as EngineState;
  let n = 0;
  while (engine.state.scopeStack.length > depth) {
    engine.endScope();
    n++;
  }
  engine.state.kernelDepth = 0;
  if (depth === 0) engine.state.gradientDepth = 0;
  return n;
}
