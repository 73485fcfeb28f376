/**
 * Deterministic mutations of valid files for every loader (torch zip, torch legacy, safetensors,
 * quantbook IR JSON, ONNX): bit flips, truncations, inflated length / shape fields, zeroed runs,
 * and for pickles memo references rewired (cycles, a value where another kind belongs). Each
 * mutated file must load something or throw an Error that names the file — never crash, hang,
 * leak tensors, or hold more than MEMORY_BOUND_MB of memory once loaded.
 */
import * as tf from "@tensorflow/tfjs";
import { readFileSync } from "node:fs";
import * as path from "node:path";
import * as qb from "../src";
import { parseSafetensors } from "../src/io/safetensors";
import { parseTorch } from "../src/io/torch";
import { validateIr } from "../src/ops/validateIr";

const FIXTURES = path.join(__dirname, "..", "..", "test", "fixtures");

export interface FuzzReport {
  format: string;
  tried: number;
  loaded: number;
  clearErrors: number;
  /** Mutations that threw something other than an Error naming the file, or leaked tensors. */
  bad: string[];
  slowestMs: number;
  /** The most memory (heap + array buffers) one loaded file held, over the state before loading. */
  maxRetainedMB: number;
}

const memoryNow = () => {
  const m = process.memoryUsage();
  return (m.heapUsed + m.arrayBuffers) / 2 ** 20;
};

/** xorshift32: the same mutations every run. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 4294967296;
  };
}

/** Retained memory (heap + array buffers) a loaded file may hold. */
export const MEMORY_BOUND_MB = 256;

/** Points a BINGET (0x68 k) at another memo entry: aliasing, self-containing lists and dicts. */
function rewireMemo(b: Buffer, r: () => number): { bytes: Buffer; what: string } | null {
  const gets: number[] = [];
  for (let i = 0; i + 1 < b.length; i++) if (b[i] === 0x68 && b[i + 1] < 64) gets.push(i);
  if (gets.length === 0) return null;
  const at = gets[Math.floor(r() * gets.length)];
  const k = Math.floor(r() * (b[at + 1] + 2));
  b[at + 1] = k;
  return { bytes: b, what: `memo get at ${at} rewired to ${k}` };
}

function mutate(buf: Buffer, r: () => number, pickle: boolean): { bytes: Buffer; what: string } {
  const b = Buffer.from(buf);
  const at = Math.floor(r() * b.length);
  switch (Math.floor(r() * (pickle ? 6 : 5))) {
    case 0: {
      const bit = Math.floor(r() * 8);
      b[at] ^= 1 << bit;
      return { bytes: b, what: `flip bit ${bit} of byte ${at}` };
    }
    case 1:
      return { bytes: b.subarray(0, at), what: `truncate to ${at} bytes` };
    case 2: {
      const pos = Math.min(at, Math.max(0, b.length - 4));
      b.writeUInt32LE(0xffffff00 + Math.floor(r() * 255), pos);
      return { bytes: b, what: `inflate 4 bytes at ${pos}` };
    }
    case 3: {
      const n = 1 + Math.floor(r() * 64);
      b.fill(0, at, Math.min(b.length, at + n));
      return { bytes: b, what: `zero ${n} bytes at ${at}` };
    }
    case 5: {
      const rewired = rewireMemo(b, r);
      if (rewired) return rewired;
      b[at] ^= 0xff;
      return { bytes: b, what: `invert byte ${at}` };
    }
    default: {
      // a huge declared size in the text or a varint: digits or 0xff runs
      const n = 1 + Math.floor(r() * 8);
      b.fill(r() < 0.5 ? 0x39 : 0xff, at, Math.min(b.length, at + n));
      return { bytes: b, what: `overwrite ${n} bytes at ${at} with a huge value` };
    }
  }
}

type Loader = (bytes: Buffer, name: string) => Promise<unknown> | unknown;

const LOADERS: Record<string, { file: () => Buffer; load: Loader; pickle?: boolean }> = {
  "torch zip": {
    file: () => readFileSync(path.join(FIXTURES, "float-checkpoint.ckpt")),
    load: (b, n) => parseTorch(b, n),
    pickle: true,
  },
  // the nested file: containers, parameters, several storages — most mutations land in the pickle
  "torch legacy": {
    file: () => readFileSync(path.join(FIXTURES, "legacy_nested.pt")),
    load: (b, n) => parseTorch(b, n),
    pickle: true,
  },
  safetensors: {
    file: () => readFileSync(path.join(FIXTURES, "small.safetensors")),
    load: (b, n) => parseSafetensors(b, n),
  },
  "quantbook IR": {
    file: () => irBytes(),
    load: (b, n) => {
      let ir: unknown;
      try {
        ir = JSON.parse(b.toString());
      } catch (e) {
        throw new Error(`${n}: not JSON (${(e as Error).message})`);
      }
      validateIr(ir, n);
      return ir;
    },
  },
  onnx: {
    file: () => readFileSync(path.join(FIXTURES, "onnx", "resnet_opset13.onnx")),
    load: (b, n) =>
      qb.io.loadOnnx(new Uint8Array(b)).catch((e: Error) => Promise.reject(new Error(`${n}: ${e.message}`))),
  },
};

let irCache: Buffer | null = null;
function irBytes(): Buffer {
  if (irCache) return irCache;
  qb.setMarch(qb.March.NASH_M);
  const m = new qb.examples.SmallModel();
  const x = tf.randomNormal([1, 2, 3, 256], 0, 1, "float32", 1);
  const c = qb.prepare(m.eval(), x, { qconfigSetter: [qb.qconfig.defaultCalibrationQconfigSetter], warn: false });
  qb.setFakeQuantize(c, qb.FakeQuantState.CALIBRATION);
  tf.dispose(c.forward(x) as tf.Tensor); // CALIBRATION: the observers see the batch
  qb.setFakeQuantize(c, qb.FakeQuantState.VALIDATION);
  irCache = Buffer.from(JSON.stringify(qb.export(c, x)));
  tf.dispose(x);
  c.dispose();
  m.dispose();
  return irCache;
}

const disposeAll = (v: unknown, seen = new Set<object>()): void => {
  if (v instanceof tf.Tensor) v.dispose();
  else if (v instanceof qb.nn.Module) v.dispose();
  else if (v && typeof v === "object" && !(v instanceof Uint8Array) && !seen.has(v)) {
    seen.add(v);
    (Array.isArray(v) ? v : Object.values(v)).forEach((x) => disposeAll(x, seen));
  }
};

export async function fuzzFormat(format: string, count: number, seed = 1): Promise<FuzzReport> {
  const { file, load, pickle = false } = LOADERS[format];
  const valid = file();
  const r = rng(seed);
  const report: FuzzReport = { format, tried: 0, loaded: 0, clearErrors: 0, bad: [], slowestMs: 0, maxRetainedMB: 0 };
  const name = `fuzz-${format.replace(/\W/g, "_")}.bin`;
  for (let i = 0; i < count; i++) {
    const { bytes, what } = mutate(valid, r, pickle);
    const before = tf.memory().numTensors;
    const t0 = performance.now();
    let outcome = "loaded";
    try {
      const mem0 = memoryNow();
      const value = await load(bytes, name);
      const retained = memoryNow() - mem0;
      report.maxRetainedMB = Math.max(report.maxRetainedMB, retained);
      if (retained > MEMORY_BOUND_MB) report.bad.push(`${what}: holds ${retained.toFixed(0)} MB once loaded`);
      disposeAll(value);
      report.loaded++;
    } catch (e) {
      outcome = `error: ${e instanceof Error ? e.message.slice(0, 200) : String(e)}`;
      if (e instanceof Error && e.message.includes(name)) report.clearErrors++;
      else report.bad.push(`${what}: ${e instanceof Error ? e.message.slice(0, 160) : String(e)}`);
    }
    const ms = performance.now() - t0;
    report.slowestMs = Math.max(report.slowestMs, ms);
    if (ms > 1000) report.bad.push(`${what}: took ${ms.toFixed(0)} ms`);
    if (tf.memory().numTensors !== before)
      report.bad.push(`${what}: ${tf.memory().numTensors - before} tensors left behind (${outcome})`);
    report.tried++;
  }
  return report;
}

export const FORMATS = Object.keys(LOADERS);
