/**
 * The state a prepared model carries: per op its qconfig and fake-quantizers, the traced graph,
 * the target chip and the fake-quant state. It intercepts every functional op of the forward.
 */
import * as tf from "@tensorflow/tfjs";
import type { Module } from "../nn/module";
import { INTERCEPTOR, type Compute, type OpCall, type OpInterceptor } from "../nn/runtime";
import type { March } from "../march/march";
import { findOp } from "../ops";
import type { FakeQuantizer } from "../quant/fakeQuantizer";
import type { QConfig } from "../quant/qconfig";
import { FakeQuantState } from "../quant/state";
import type { Operation } from "../util/operations";
import { FLOAT_CONSTANT, isModelInput, type Graph, type OpInfo } from "./graph";
import type { DtypeSource, OpDtypes } from "../march/opDtypes";
import { FLOAT } from "../quant/dtypes";
import { errors } from "../messages";

export interface PreparedOp {
  info: OpInfo;
  qconfig: QConfig;
  /** One per activation input when the qconfig re-quantizes inputs. */
  inputs: (FakeQuantizer | null)[];
  weight: FakeQuantizer | null;
  /** null: the output stays in high precision. */
  output: FakeQuantizer | null;
}

/** Where a tap sees a tensor: an op input (`input_0`), its (fake-quantized) weight, a float parameter or its output. */
export type TapRole = "weight" | "output" | `input_${number}` | `param_${number}`;

/** Called with tensors as they flow (after fake quantization); used by analysis tools. */
export type Tap = (op: PreparedOp, role: TapRole, value: tf.Tensor, raw: tf.Tensor) => void;

export class QuantRuntime implements OpInterceptor, DtypeSource {
  state: FakeQuantState = FakeQuantState.FLOAT;

  opsPerModule(): Map<string, number> {
    const counts = new Map<string, number>();
    for (const op of this.ops.values()) counts.set(op.info.modulePath, (counts.get(op.info.modulePath) ?? 0) + 1);
    return counts;
  }

  /** The dtypes each op sees — inputs (re-quantized, or their producer's output), weight, output: what chip rules check. */
  opDtypes(caller: string): OpDtypes[] {
    if (this.busy !== null) throw errors.busy(caller, this.busy.task, (performance.now() - this.busy.since) / 1000);
    return [...this.ops.values()].map((op) => ({
      name: op.info.name,
      type: op.info.type,
      module: op.info.modulePath,
      inputs: op.info.inputs.map((inp, i) => {
        const requant = op.inputs[i];
        if (requant) return requant.dtype.name;
        if (isModelInput(inp.source) || inp.source === FLOAT_CONSTANT) return FLOAT;
        return this.outputQuantizer(inp.source)?.dtype.name ?? FLOAT;
      }),
      weight: op.info.weightShape ? (op.weight?.dtype.name ?? FLOAT) : undefined,
      output: this.outputQuantizer(op.info.name)?.dtype.name ?? FLOAT,
    }));
  }
  readonly taps: Tap[] = [];
  /** Replaces an op's computation (analysis tools feed recorded tensors with it). */
  override: ((call: OpCall, op: PreparedOp) => tf.Tensor | undefined) | null = null;
  /** A long asynchronous operation (qb.calibrate) that is running on this model now, if any. */
  busy: Operation | null = null;
  /** Which engine runs this model's calibration and analysis ("auto": onnxruntime when it pays and every op can be lowered). */
  engine: "auto" | "ort" | "tfjs" = "auto";

  constructor(
    readonly graph: Graph,
    readonly ops: Map<string, PreparedOp>,
    readonly march: March | null,
  ) {}

  *fakeQuantizers(): Generator<[PreparedOp, TapRole, FakeQuantizer]> {
    for (const op of this.ops.values()) {
      for (const [i, fq] of op.inputs.entries()) if (fq) yield [op, `input_${i}`, fq];
      if (op.weight) yield [op, "weight", op.weight];
      if (op.output) yield [op, "output", op.output];
    }
  }

  /**
   * The fake-quantizer whose grid an op's output lies on: its own, or — for an op that keeps its
   * input's scale (a registry `passthrough`) — its input's. null: the output is float.
   */
  outputQuantizer(name: string): FakeQuantizer | null {
    const op = this.ops.get(name);
    if (op === undefined) return null;
    if (op.output !== null) return op.output;
    if (findOp(op.info.type)?.role !== "passthrough") return null;
    if (op.inputs[0]) return op.inputs[0];
    const src = op.info.inputs[0]?.source;
    return src === undefined ? null : this.outputQuantizer(src);
  }

  begin(_args: unknown[], root: object): void {
    const training = (root as Module).training;
    const needsEval = this.state === FakeQuantState.CALIBRATION || this.state === FakeQuantState.VALIDATION;
    if (needsEval && training) {
      throw errors.wrongState(
        "forward",
        `${this.state} state but in training mode`,
        `call model.eval() first (${this.state} runs in eval mode)`,
      );
    }
    if (this.state === FakeQuantState.QAT && !training) {
      throw errors.wrongState(
        "forward",
        "QAT state but in eval mode",
        "call model.train() first, or setFakeQuantize(model, VALIDATION) to evaluate",
      );
    }
  }

  end(): void {}

  runOp(call: OpCall, compute: Compute): tf.Tensor {
    const op = this.ops.get(call.name);
    if (op === undefined) {
      throw errors.untracedOp(call.name, call.type);
    }
    const tap = (role: TapRole, value: tf.Tensor, raw: tf.Tensor) => {
      for (const t of this.taps) t(op, role, value, raw);
    };
    const inputs = call.inputs.map((x, i) => {
      const fq = op.inputs[i];
      const y = fq ? fq.forward(x) : x;
      tap(`input_${i}`, y, x);
      return y;
    });
    let weight = call.weight;
    if (weight !== undefined) {
      const raw = weight;
      weight = op.weight ? op.weight.forward(weight) : weight;
      tap("weight", weight, raw);
    }
    call.params.forEach((p, i) => tap(`param_${i}`, p, p));
    const computed = this.override?.({ ...call, inputs, weight }, op) ?? compute(inputs, weight, call.params);
    const regrid = op.output === null && findOp(op.info.type)?.insertsValues ? this.outputQuantizer(call.name) : null;
    const out = op.output ? op.output.forward(computed) : regrid ? regrid.regrid(computed) : computed;
    tap("output", out, computed);
    return out;
  }
}

/** The runtime of a prepared model, or a clear error when the model was not prepared. */
/** The prepared model's runtime, which must be in VALIDATION state (calibrated, quantizing): export, evaluate, QDQ. */
export function validatingRuntime(model: unknown, caller: string): QuantRuntime {
  const rt = runtimeOf(model, caller);
  if (rt.state !== FakeQuantState.VALIDATION) throw errors.needsValidation(caller, rt.state);
  return rt;
}

export function runtimeOf(model: unknown, caller: string): QuantRuntime {
  const rt = model !== null && typeof model === "object" ? (model as Record<symbol, unknown>)[INTERCEPTOR] : undefined;
  if (!(rt instanceof QuantRuntime)) {
    throw errors.notPrepared(caller);
  }
  if (rt.busy !== null) {
    throw errors.busy(caller, rt.busy.task, (performance.now() - rt.busy.since) / 1000);
  }
  return rt;
}

interface Saved {
  fq: FakeQuantizer;
  state: FakeQuantState;
  override: boolean | null;
  scale: Float64Array | null;
}

/**
 * Runs `fn` with the runtime in `state` and every point's override set by `configure`, then puts
 * every state, override and scale back as they were, even when `fn` throws.
 */
export function withPoints<T>(
  rt: QuantRuntime,
  state: FakeQuantState,
  configure: (op: PreparedOp, role: TapRole, fq: FakeQuantizer) => void,
  fn: () => T,
): T {
  const saved: Saved[] = [];
  const rtState = rt.state;
  for (const [op, role, fq] of rt.fakeQuantizers()) {
    saved.push({ fq, state: fq.state, override: fq.fakeQuantOverride, scale: fq.scaleOverride });
    fq.state = state;
    configure(op, role, fq);
  }
  rt.state = state;
  try {
    return fn();
  } finally {
    rt.state = rtState;
    for (const s of saved) {
      s.fq.state = s.state;
      s.fq.fakeQuantOverride = s.override;
      s.fq.scaleOverride = s.scale;
    }
  }
}
