/**
 * The workflow, as on the reference toolchain:
 *
 * ```
 *  float model ──(1) prepare──► prepared model (fake-quantizers, FLOAT state)
 *                                  │
 *        (2) setFakeQuantize(CALIBRATION) + calibrate(batches)   observers learn ranges
 *                                  │
 *        (3) setFakeQuantize(VALIDATION)                         fake quantization, frozen scales
 *                                  │            ╲
 *        (4) optional QAT: train(), setFakeQuantize(QAT), qat()   ╲ (5) export → convert (march)
 * ```
 */
import * as tf from "@tensorflow/tfjs";
import { getMarch, type March } from "../march/march";
import { cloneModule, type Module } from "../nn/module";
import { errors } from "../messages";
import { INTERCEPTOR } from "../nn/runtime";
import { opDef, weightAxisOf } from "../ops";
import { FakeQuantizer } from "../quant/fakeQuantizer";
import { MinMaxObserver } from "../quant/observers/minmax";
import { MSEObserver } from "../quant/observers/mse";
import { mergeQconfig, type FakeQuantSpec, type QConfig } from "../quant/qconfig";
import { qint8 } from "../quant/dtypes";
import { buildCheckReport, type CheckReport } from "./checkReport";
import { isModelInput, Tracer, type Graph } from "./graph";
import type { QconfigSetter } from "./qconfigSetters";
import { QuantRuntime, runtimeOf, type PreparedOp } from "./quantRuntime";

export interface PrepareOptions {
  /** Applied in order; the earlier setter wins for every field it decides. */
  qconfigSetter: QconfigSetter | QconfigSetter[];
  /** Print a short warning when the check report has findings (default true). */
  warn?: boolean;
  /**
   * The engine of calibration, validation and analysis runs: "auto" (default: onnxruntime when the
   * model is large enough to gain and every op has an ONNX lowering), "ort" or "tfjs". `qb.backend.engine(model)` says which runs and why.
   */
  engine?: "auto" | "ort" | "tfjs";
  /** The target chip (default: the one `qb.setMarch` chose). Tools pass theirs here rather than swap the global. */
  march?: March;
}

/** One line per kind of finding that usually means a mistake: model inputs without a QuantStub, raw tf ops, shared modules. */
export function checkWarning(name: string, r: CheckReport): string | null {
  const parts: string[] = [];
  const some = (xs: string[]) => `${xs.slice(0, 3).join("; ")}${xs.length > 3 ? "; ..." : ""}`;
  const unstubbed = r.floatInputs.filter((f) => isModelInput(f.source));
  if (unstubbed.length > 0) {
    parts.push(
      `${unstubbed.length} op input(s) take a model input no QuantStub quantized (${some(unstubbed.map((f) => `${f.op} input ${f.input}`))}) — put a qb.nn.QuantStub in front`,
    );
  }
  if (r.untracedInputs.length > 0) {
    parts.push(
      `${r.untracedInputs.length} op input(s) come from a raw tf op, which cuts the traced graph (${some(r.untracedInputs.map((u) => `${u.op} input ${u.input}`))}) — use the qb.F / qb.nn equivalent`,
    );
  }
  if (r.sharedModules.length > 0) {
    parts.push(
      `${r.sharedModules.length} module(s) called in several places share one set of scales (${some(r.sharedModules.map((s) => s.paths.join(", ")))}) — give each call its own module`,
    );
  }
  if (parts.length === 0) return null;
  return `prepare(${name}): ${parts.join(". ")}. The whole report: qb.analysis.modelCheckResult(model).text (silence with { warn: false }).`;
}

const checkReports = new WeakMap<object, CheckReport>();

function makeFakeQuantizer(
  where: string,
  spec: FakeQuantSpec,
  role: "weight" | "activation",
  weightAxis = 0,
): FakeQuantizer {
  const dtype = spec.dtype ?? qint8;
  const factory = spec.observer ?? (role === "weight" ? MinMaxObserver : MSEObserver);
  const observer = factory.create({ dtype, axis: role === "weight" ? weightAxis : undefined });
  return new FakeQuantizer(where, dtype, observer);
}

function resolveQconfigs(graph: Graph, setters: QconfigSetter[]): Map<string, PreparedOp> {
  for (const s of setters) {
    if (s === undefined || s === null || typeof s.qconfigFor !== "function") {
      throw errors.invalidArgument(
        "prepare",
        "a qconfigSetter is not a setter",
        "use setters such as qb.qconfig.calibration8bitWeight16bitActQconfigSetter or qb.qconfig.ModuleNameQconfigSetter({...})",
      );
    }
    s.validate?.(graph);
  }
  const ops = new Map<string, PreparedOp>();
  for (const info of graph.ops) {
    let qc: QConfig = {};
    for (const s of setters) {
      const got = s.qconfigFor(info, graph);
      if (got !== undefined) qc = mergeQconfig(qc, got);
    }
    const inputSpec = qc.input;
    const def = opDef(info.type, `prepare: ${info.name}`);
    // ops that only move or select values keep their input's scale: no output fake-quantizer
    const ownOutput = def.role !== "passthrough" && info.type !== "DeQuantStub";
    ops.set(info.name, {
      info,
      qconfig: qc,
      inputs: info.inputs.map((_, i) =>
        inputSpec ? makeFakeQuantizer(`${info.name}.input_${i}`, inputSpec, "activation") : null,
      ),
      weight:
        qc.weight && info.weightShape
          ? makeFakeQuantizer(`${info.name}.weight`, qc.weight, "weight", weightAxisOf(def, info.attrs))
          : null,
      output: qc.output && ownOutput ? makeFakeQuantizer(info.name, qc.output, "activation") : null,
    });
  }
  return ops;
}

/**
 * (1) Copies the float model, traces its forward once on `exampleInput`, names every op by
 * module path and attaches fake-quantizers per the qconfig setters. The float model is left
 * untouched (use it as the baseline). The result starts in FLOAT state.
 *
 * ```ts
 * qb.setMarch(qb.March.NASH_M);
 * const calib = qb.prepare(model.eval(), x, { qconfigSetter: [qb.qconfig.calibration8bitWeight16bitActQconfigSetter] });
 * ```
 */
export function prepare<T extends Module>(model: T, exampleInput: tf.Tensor | tf.Tensor[], opts: PrepareOptions): T {
  const march = opts.march ?? getMarch();
  if (march === null) {
    throw errors.wrongState(
      "prepare",
      "no target chip",
      "call qb.setMarch(qb.March.NASH_M) (or NASH_E / NASH_P) before prepare",
    );
  }
  if (model === null || typeof model !== "object" || typeof (model as Module).namedModules !== "function") {
    throw errors.invalidArgument(
      "prepare",
      "the model is not a qb.nn.Module",
      "pass a model built from qb.nn layers (or loaded with qb.io)",
    );
  }
  if (opts === undefined || opts.qconfigSetter === undefined) {
    throw errors.invalidArgument(
      "prepare",
      "no qconfigSetter",
      "pass { qconfigSetter: [...] }, e.g. [qb.qconfig.calibration8bitWeight16bitActQconfigSetter]",
    );
  }
  const args = Array.isArray(exampleInput) ? exampleInput : [exampleInput];
  const copy = cloneModule(model);
  const own = new Set<object>();
  for (const [, m] of copy.namedModules())
    for (const v of Object.values(m)) if (v instanceof tf.Tensor) own.add(v.dataId);
  const tracer = new Tracer(own);
  const holder = copy as unknown as Record<symbol, unknown>;
  holder[INTERCEPTOR] = tracer;
  try {
    const out = (copy.forward as (...a: tf.Tensor[]) => tf.TensorContainer)(...args);
    tf.dispose(out);
    const graph = tracer.graph();
    if (graph.ops.length === 0) {
      throw errors.invalidArgument(
        "prepare",
        "the forward ran no quantization-aware op",
        "build it from qb.nn layers and qb.F ops",
      );
    }
    const setters = Array.isArray(opts.qconfigSetter) ? opts.qconfigSetter : [opts.qconfigSetter];
    const ops = resolveQconfigs(graph, setters);
    const runtime = new QuantRuntime(graph, ops, march);
    if (opts.engine !== undefined) {
      if (opts.engine !== "auto" && opts.engine !== "ort" && opts.engine !== "tfjs") {
        throw errors.invalidArgument(
          "prepare",
          `engine '${String(opts.engine)}' is not an engine`,
          'pass "auto", "ort" or "tfjs"',
        );
      }
      runtime.engine = opts.engine;
    }
    holder[INTERCEPTOR] = runtime;
    const report = buildCheckReport(copy, graph, ops);
    checkReports.set(copy, report);
    const warning = opts.warn === false ? null : checkWarning(model.constructor.name, report);
    if (warning !== null) console.warn(warning);
    return copy;
  } catch (e) {
    copy.dispose();
    // the wrapped error keeps its kind (code) and stays reachable as the cause
    throw errors.inContext(`prepare(${model.constructor.name})`, e);
  }
}

/** The check report `prepare` made for a prepared model. */
export function modelCheckResult(prepared: Module): CheckReport {
  runtimeOf(prepared, "modelCheckResult");
  return checkReports.get(prepared) as CheckReport;
}

/** The traced ops of a prepared model with their qconfigs and fake-quantizers. */
export function preparedOps(prepared: Module): PreparedOp[] {
  return [...runtimeOf(prepared, "preparedOps").ops.values()];
}
