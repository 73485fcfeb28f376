/**
 * The execution engine of a prepared model: onnxruntime (the model compiled once into an ONNX
 * graph, see compile.ts) for calibration, validation, sensitivity and planner runs, or tfjs op
 * by op (DSL authoring, QAT, small models, ops without a lowering). The choice is automatic and
 * visible (`qb.backend.engine(model)`), and `{ engine: "ort" | "tfjs" }` on `prepare` (or the environment
 * variable `QUANTBOOK_ENGINE`) forces one. A model that cannot be compiled runs on tfjs with a
 * one-line notice naming why — never a silent slow path.
 */
import * as tf from "@tensorflow/tfjs";
import type { Module } from "../../nn/module";
import { fakeQuantize, inverseScale } from "../../quant/fakeQuantize";
import { FakeQuantState } from "../../quant/state";
import { errors } from "../../messages";
import { withScope } from "../../util/scope";
import { runtimeOf, type QuantRuntime } from "../quantRuntime";
import type { FakeQuantizer } from "../../quant/fakeQuantizer";
import {
  capture,
  captureValid,
  engineBlockers,
  lower,
  Unsupported,
  type Capture,
  type Lowered,
  type PointSlot,
} from "./compile";
import { chooseCuts } from "./cuts";
import { loadOrt, optionsGeneration, ortLoadError, OrtSession, type Feed } from "./session";

export { setEngineOptions, engineOptions, type EngineOptions } from "./session";

export type EngineName = "ort" | "tfjs";
export type EngineChoice = EngineName | "auto";

/** Below this many flops per forward, `auto` keeps a model on tfjs: a compile would cost more than it saves. */
export const AUTO_MIN_FLOPS = 20e6;

interface Built {
  lowered: Lowered;
  session: OrtSession;
}

interface Compiled {
  key: string;
  cap: Capture;
  generation: number;
  run: Built | null;
  calib: Built | null;
  /** Weight points' batch ranges (a weight is the same every batch). */
  weightRanges: Map<FakeQuantizer, { min: Float64Array; max: Float64Array }>;
  /** Weights fake-quantized at their current scale (one per weight point). */
  weightCache: Map<FakeQuantizer, { key: string; data: Float32Array }>;
}

const compiled = new WeakMap<QuantRuntime, Compiled>();
const failed = new WeakMap<QuantRuntime, { key: string; reason: string }>();
const sessionsOf = new FinalizationRegistry<OrtSession[]>((ss) => ss.forEach((s) => s.dispose()));
const owned = new WeakMap<QuantRuntime, OrtSession[]>();

function envChoice(): EngineChoice | null {
  const v = process.env.QUANTBOOK_ENGINE;
  if (v === undefined || v === "") return null;
  if (v !== "ort" && v !== "tfjs" && v !== "auto") {
    throw errors.invalidArgument(
      "QUANTBOOK_ENGINE",
      `'${v}' is not an engine`,
      "set it to ort, tfjs or auto (or unset it)",
    );
  }
  return v;
}

export interface EngineDecision {
  engine: EngineName;
  reason: string;
  /** The model would run faster on onnxruntime but cannot: worth a notice. */
  notice?: boolean;
}

/** Which engine a prepared model's runs use now, and why (without compiling). */
export function decideEngine(rt: QuantRuntime, want: EngineChoice = rt.engine): EngineDecision {
  const choice = want === "auto" ? (envChoice() ?? "auto") : want;
  if (choice === "tfjs")
    return { engine: "tfjs", reason: want === "tfjs" ? "requested ({ engine: 'tfjs' })" : "QUANTBOOK_ENGINE=tfjs" };
  if (rt.state === FakeQuantState.QAT) return { engine: "tfjs", reason: "QAT state: training needs tfjs's gradients" };
  if (loadOrt() === null) {
    if (choice === "ort")
      throw errors.invalidArgument(
        "engine",
        `onnxruntime-node does not load (${ortLoadError()})`,
        'reinstall it (npm ci), or use { engine: "tfjs" }',
      );
    return { engine: "tfjs", reason: `onnxruntime-node does not load (${ortLoadError()})`, notice: true };
  }
  const blocked = engineBlockers(rt);
  if (blocked !== null) return { engine: "tfjs", reason: blocked, notice: true };
  const f = failed.get(rt);
  if (f !== undefined) return { engine: "tfjs", reason: f.reason, notice: true };
  const flops = rt.graph.ops.reduce((a, o) => a + o.flops, 0);
  if (choice === "auto" && flops < AUTO_MIN_FLOPS) {
    return {
      engine: "tfjs",
      reason: `small model (${(flops / 1e6).toFixed(2)} MFLOP per forward): tfjs runs it without a compile`,
    };
  }
  return {
    engine: "ort",
    reason:
      choice === "ort" ? "requested" : `${(flops / 1e6).toFixed(0)} MFLOP per forward, every op has an ONNX lowering`,
  };
}

const notified = new WeakSet<QuantRuntime>();
/** Reasons already told: the planner prepares a model a dozen times, and one line says it. */
const told = new Set<string>();
function notice(rt: QuantRuntime, reason: string): void {
  if (notified.has(rt) || told.has(reason)) return;
  notified.add(rt);
  told.add(reason);
  console.warn(`quantbook: this model runs on tfjs, not onnxruntime: ${reason}`);
}

function keyOf(rt: QuantRuntime, args: tf.Tensor[]): string {
  const rounds = [...rt.fakeQuantizers()].map(([, , fq]) => (fq.roundMode === "bpu" ? "b" : "e")).join("");
  return `${args.map((a) => `${a.dtype}[${a.shape}]`).join(",")}|${rounds}`;
}

function build(rt: QuantRuntime, c: Compiled, observe: boolean): Built | Unsupported {
  const lowered = lower(rt, c.cap, { observe });
  if (lowered instanceof Unsupported) return lowered;
  try {
    const session = new OrtSession(lowered.bytes);
    let list = owned.get(rt);
    if (list === undefined) {
      list = [];
      owned.set(rt, list);
      sessionsOf.register(rt, list);
    }
    list.push(session);
    return { lowered, session };
  } catch (e) {
    return new Unsupported(
      `onnxruntime refused the compiled graph (${e instanceof Error ? e.message.split("\n")[0] : String(e)})`,
    );
  }
}

function release(rt: QuantRuntime): void {
  const list = owned.get(rt);
  if (list === undefined) return;
  list.splice(0).forEach((s) => s.dispose());
}

/**
 * The compiled model for these inputs, or null when the model runs on tfjs (a notice says why
 * once). `observe`: the calibration variant.
 */
export function ortModel(
  model: Module,
  rt: QuantRuntime,
  args: tf.Tensor[],
  observe = false,
  want: EngineChoice = rt.engine,
): OrtModel | null {
  const d = decideEngine(rt, want);
  if (d.engine === "tfjs") {
    if (d.notice) notice(rt, d.reason);
    return null;
  }
  const key = keyOf(rt, args);
  let c = compiled.get(rt);
  if (c === undefined || c.key !== key || c.generation !== optionsGeneration() || !captureValid(c.cap)) {
    release(rt);
    const cap = capture(model, rt, args);
    if (cap instanceof Unsupported) return refuse(rt, key, cap.reason);
    c = {
      key,
      cap,
      generation: optionsGeneration(),
      run: null,
      calib: null,
      weightRanges: new Map(),
      weightCache: new Map(),
    };
    compiled.set(rt, c);
  }
  const slot = observe ? "calib" : "run";
  let built = c[slot];
  if (built === null) {
    const b = build(rt, c, observe);
    if (b instanceof Unsupported) return refuse(rt, key, b.reason);
    built = c[slot] = b;
  }
  return new OrtModel(rt, c, built);
}

function refuse(rt: QuantRuntime, key: string, reason: string): null {
  failed.set(rt, { key, reason });
  notice(rt, reason);
  return null;
}

/**
 * Which engine runs a prepared model's calibration and analysis, and why; after the first run on
 * onnxruntime also the compiled graph's node and quantization-point counts.
 *
 * ```ts
 * qb.backend.engine(calib);   // { engine: "ort", reason: "1819 MFLOP per forward, every op has an ONNX lowering", nodes: 530, points: 71 }
 * ```
 */
export function engine(model: Module): EngineDecision & { nodes?: number; points?: number } {
  return describeEngine(runtimeOf(model, "engine"));
}

/** Which engine the model uses and why, for `qb.backend.engine(model)`. */
export function describeEngine(rt: QuantRuntime): EngineDecision & { nodes?: number; points?: number } {
  const d = decideEngine(rt);
  const c = compiled.get(rt);
  const built = c?.run ?? c?.calib;
  return built ? { ...d, nodes: built.lowered.nodes, points: built.lowered.slots.length } : d;
}

/** Per-point settings of one run: which points fake-quantize (default: each point's own state). */
export type PointSwitch = (slot: PointSlot) => boolean;

export class OrtModel {
  constructor(
    private readonly rt: QuantRuntime,
    private readonly c: Compiled,
    private readonly built: Built,
  ) {}

  get slots(): PointSlot[] {
    return this.built.lowered.slots;
  }

  private feeds(
    args: tf.Tensor[],
    on: PointSwitch,
    where: string,
    lowered: Lowered = this.built.lowered,
    values?: Map<string, Float32Array>,
  ): Record<string, Feed> {
    const feeds: Record<string, Feed> = {};
    for (const inp of lowered.inputs) {
      let data = values?.get(inp.source);
      if (data === undefined) {
        const a = args[Number(inp.source.slice(7, -1))];
        data = a.dtype === "float32" ? (a.dataSync() as Float32Array) : Float32Array.from(a.dataSync());
      }
      feeds[inp.name] = { type: "float32", data, dims: inp.shape };
    }
    for (const slot of lowered.slots) {
      const enabled = on(slot);
      const scale = enabled ? slot.fq.scale() : null;
      if (enabled && scale === null) throw errors.notCalibrated(where, [slot.fq.where]);
      if (slot.weightInput !== undefined) {
        feeds[slot.weightInput] = {
          type: "float32",
          data: scale === null ? (slot.weight as { data: Float32Array }).data : this.quantizedWeight(slot, scale),
          dims: (slot.weight as { shape: number[] }).shape,
        };
        continue;
      }
      const n = slot.scaleDims.reduce((p, d) => p * d, 1);
      const s = new Float32Array(n).fill(1);
      if (scale !== null) for (let i = 0; i < n; i++) s[i] = scale[scale.length === 1 ? 0 : i];
      feeds[slot.scale] = { type: "float32", data: s, dims: slot.scaleDims };
      feeds[slot.inv] = { type: "float32", data: s.map((v) => inverseScale(v)), dims: slot.scaleDims };
      feeds[slot.qmin] = { type: "float32", data: Float32Array.of(slot.fq.dtype.qmin), dims: [] };
      feeds[slot.qmax] = { type: "float32", data: Float32Array.of(slot.fq.dtype.qmax), dims: [] };
      feeds[slot.on] = { type: "bool", data: Uint8Array.of(enabled ? 1 : 0), dims: [] };
    }
    return feeds;
  }

  /** A weight fake-quantized by quantbook's own kernel (the tfjs path's numbers), kept while its scale, dtype and rounding stay. */
  private quantizedWeight(slot: PointSlot, scale: Float64Array): Float32Array {
    const fq = slot.fq;
    const key = `${fq.dtype.name}|${fq.roundMode}|${Array.from(scale).join(",")}`;
    const hit = this.c.weightCache.get(fq);
    if (hit !== undefined && hit.key === key) return hit.data;
    const w = slot.weight as { data: Float32Array; shape: number[] };
    // (not returned from a tf.tidy: tidy walks a returned typed array element by element, ~1 s per million)
    const t = tf.tensor(w.data, w.shape, "float32");
    const q = fakeQuantize(t, {
      scale: fq.axis === undefined ? scale[0] : scale,
      dtype: fq.dtype,
      axis: fq.axis,
      roundMode: fq.roundMode,
    });
    const data = Float32Array.from(q.dataSync() as Float32Array);
    tf.dispose([t, q]);
    this.c.weightCache.set(fq, { key, data });
    return data;
  }

  /** The model's outputs (flattened, in the forward's order), with each point on as `on` says (default: its own state). */
  forward(args: tf.Tensor[], on: PointSwitch = (s) => s.fq.quantizing, where = "forward"): tf.Tensor[] {
    const outs = this.built.lowered.outputs;
    const r = this.built.session.run(
      this.feeds(args, on, where),
      outs.map((o) => o.name),
    );
    return outs.map((o) => tf.tensor(r[o.name].data, o.shape, "float32"));
  }

  /**
   * The float outputs, then the outputs with only `points[k]` on, for every k (`visit("float", …)`
   * first, then `visit(k, …)`; `visit` owns the tensors). A run starts at the last cut before its
   * point and is fed the float values there (chosen by cuts.ts from the ops' flops, where a run
   * saves more than the session it needs costs), so the float prefix is computed once, not once
   * per point. Sessions live for this call only.
   */
  sweep(
    args: tf.Tensor[],
    points: FakeQuantizer[],
    visit: (k: number | "float", outs: tf.Tensor[]) => void,
    where = "sensitivity",
  ): void {
    const firstOp = new Map(this.slots.map((s) => [s.fq, s.firstOp]));
    const starts = points.map((fq) => firstOp.get(fq) ?? 0);
    const cuts = chooseCuts(this.rt.graph, starts);
    const byCut = new Map<number, number[]>(cuts.map((c) => [c.from, []]));
    starts.forEach((start, k) => {
      let best = 0;
      for (const c of cuts) if (c.from <= start && c.from > best) best = c.from;
      (byCut.get(best) ?? byCut.set(best, []).get(best))?.push(k);
    });
    const expose = new Set(cuts.flatMap((c) => c.frontier));
    const sessions: OrtSession[] = [];
    const session = (lowered: Lowered) => {
      const s = new OrtSession(lowered.bytes);
      sessions.push(s);
      return s;
    };
    const runOn = (
      lowered: Lowered,
      s: OrtSession,
      on: PointSwitch,
      values?: Map<string, Float32Array>,
      extra: string[] = [],
    ) => s.run(this.feeds(args, on, where, lowered, values), [...lowered.outputs.map((o) => o.name), ...extra]);
    const tensors = (lowered: Lowered, r: Record<string, { data: Float32Array }>) =>
      lowered.outputs.map((o) => tf.tensor(r[o.name].data, o.shape, "float32"));
    try {
      // the whole graph, exposing every cut's frontier: the float run gives the reference and the values cut runs start from
      const full = expose.size === 0 ? this.built.lowered : (lower(this.rt, this.c.cap, { expose }) as Lowered);
      const fullSession = full === this.built.lowered ? this.built.session : session(full);
      const r0 = runOn(
        full,
        fullSession,
        () => false,
        undefined,
        full.exposed.map((e) => e.name),
      );
      const values = new Map(full.exposed.map((e) => [e.source, r0[e.name].data]));
      visit("float", tensors(full, r0));
      for (const [from, ks] of [...byCut.entries()].sort((a, b) => a[0] - b[0])) {
        if (ks.length === 0) continue;
        let lowered: Lowered | Unsupported = full;
        let s = fullSession;
        if (from !== 0) {
          // a cut onnxruntime refuses costs time, not correctness: those points run the whole graph
          lowered = lower(this.rt, this.c.cap, { from });
          try {
            s = lowered instanceof Unsupported ? fullSession : session(lowered);
          } catch {
            s = fullSession;
          }
          if (s === fullSession) lowered = full;
        }
        const l = lowered as Lowered;
        for (const k of ks)
          visit(
            k,
            tensors(
              l,
              runOn(l, s, (slot) => slot.fq === points[k], values),
            ),
          );
        if (s !== fullSession && s !== this.built.session) sessions.splice(sessions.indexOf(s), 1)[0].dispose();
      }
    } finally {
      sessions.forEach((s) => s.dispose());
    }
  }

  /**
   * One calibration batch: runs the graph and moves every observing point's observer as the tfjs
   * path would (and, given `outputs`, puts the model's outputs in `outputs[0]`). Returns false (and changes nothing) when a range is not finite — the caller runs
   * that batch on tfjs, whose observers know what to do with ±Inf and NaN.
   */
  observe(args: tf.Tensor[], outputs?: tf.Tensor[][]): boolean {
    const outs = outputs === undefined ? [] : this.built.lowered.outputs;
    const fetch = [
      ...this.built.lowered.slots.flatMap((s) =>
        s.observations.flatMap((o) => (o.kind === "extremes" ? [o.min, o.max] : [o.name])),
      ),
      ...outs.map((o) => o.name),
    ];
    const r = this.built.session.run(
      this.feeds(args, (s) => s.fq.quantizing, "calibrate"),
      fetch,
    );
    const updates: [PointSlot, { min: Float64Array; max: Float64Array }][] = [];
    for (const slot of this.built.lowered.slots) {
      if (!slot.fq.observing) continue;
      if (slot.weight !== undefined) {
        let wr = this.c.weightRanges.get(slot.fq);
        if (wr === undefined) {
          const w = slot.weight;
          wr = withScope(() => slot.fq.observer.measure(tf.tensor(w.data, w.shape, "float32")));
          this.c.weightRanges.set(slot.fq, wr);
        }
        updates.push([slot, wr]);
        continue;
      }
      for (const o of slot.observations) {
        if (o.kind === "extremes") {
          const mn = Float64Array.from(r[o.min].data);
          const mx = Float64Array.from(r[o.max].data);
          if (!mn.every(Number.isFinite) || !mx.every(Number.isFinite)) return false;
          updates.push([slot, slot.fq.observer.rangeFromExtremes(mn, mx) as { min: Float64Array; max: Float64Array }]);
        } else {
          const data = r[o.name].data;
          if (!data.every(Number.isFinite)) return false;
          updates.push([slot, withScope(() => slot.fq.observer.measure(tf.tensor(data, o.shape, "float32")))]);
        }
      }
    }
    for (const [slot, range] of updates) slot.fq.observer.accumulate(range);
    if (outputs !== undefined) outputs[0] = outs.map((o) => tf.tensor(r[o.name].data, o.shape, "float32"));
    return true;
  }
}
