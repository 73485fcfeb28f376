/**
 * quantbook: simulate Horizon's quantization toolchain in TypeScript.
 *
 * ```ts
 * import * as qb from "quantbook";
 * qb.setMarch(qb.March.NASH_M);
 * const calib = qb.prepare(model.eval(), x, { qconfigSetter: [qb.calibration8bitWeight16bitActQconfigSetter] });
 * qb.setFakeQuantize(calib, qb.FakeQuantState.CALIBRATION);
 * await qb.calibrate(calib, [x]);
 * qb.setFakeQuantize(calib, qb.FakeQuantState.VALIDATION);
 * const y = calib.forward(x);
 * ```
 */
export { initBackend, activeBackend, type BackendName } from "./backend";
/** The tfjs instance quantbook computes with: make tensors with it, so that they mix with quantbook's. */
export * as tf from "@tensorflow/tfjs";
export * as nn from "./nn";
export { F, QuantStub, DeQuantStub, manualSeed } from "./nn";
export * as quant from "./quant";
export * as io from "./io";
export * as data from "./io/dataset";
export * as deploy from "./io/deploy";
export { qint8, qint16, qint32, type QuantDType } from "./quant/dtypes";
export { FakeQuantState } from "./quant/state";
export { MinMaxObserver, MSEObserver, PercentileObserver, FixedScaleObserver, KLObserver } from "./quant/observers";
export { getQconfig, type QConfig, type GetQconfigOptions } from "./quant/qconfig";
export { March, setMarch, getMarch } from "./march/march";
export {
  calibration8bitWeight16bitActQconfigSetter,
  defaultCalibrationQconfigSetter,
  qat8bitWeight16bitActQconfigSetter,
  defaultQatQconfigSetter,
  ModuleNameQconfigSetter,
  OpTypeQconfigSetter,
  FixedScaleQconfigSetter,
  calibrationTemplate,
  type QconfigSetter,
} from "./workflow/qconfigSetters";
export { chooseCalibration, type CalibrationChoice, type CalibrationMethod } from "./analysis/calibrationChoice";
export { biasCorrection, type BiasCorrectionRow } from "./analysis/biasCorrection";
export { prepare, modelCheckResult, preparedOps, type PrepareOptions } from "./workflow/prepare";
export { quantSummary, type SummaryRow } from "./analysis/summary";
export { setFakeQuantize, getFakeQuantState } from "./workflow/setFakeQuantize";
export { calibrate } from "./workflow/calibrate";
export { engine, setEngineOptions, type EngineOptions, type EngineDecision } from "./workflow/engine";
export { setDefaultProgress, type Progress, type ProgressCallback } from "./util/progress";
export { InterruptedError } from "./util/interrupt";
export { errors, QuantbookError, nearestNames, type ErrorCode } from "./messages";
export { qatStep, qat, mseLoss } from "./workflow/qat";
export type { CheckReport } from "./workflow/checkReport";
export type { OpInfo, Graph } from "./workflow/graph";
export * as examples from "./examples";
export { exportModel as export } from "./workflow/export";
export { convert, HbModel } from "./convert/convert";
export { checkModel, type CheckResult, type Violation } from "./march/check";
export { perf, type PerfReport, type PerfOp } from "./march/perf";
export { marchSpec } from "./march/data";
export type { MarchSpec, OpRule, PerfParams } from "./march/spec";
export type { Ir, IrNode } from "./ir/types";
export { QuantAnalysis, sensitiveOpQconfigSetter, scaleExplorer } from "./analysis";
export {
  evaluate,
  MIN_COSINE,
  type Evaluation,
  type EvaluateOptions,
  type EvaluateRow,
  type Task,
} from "./analysis/evaluate";
export {
  planMixedPrecision,
  loadPlan,
  type MixedPrecisionPlan,
  type PlannerOptions,
  type PlanRow,
  type SavedPlan,
} from "./planner/planMixedPrecision";
export * as analysis from "./analysis";
export * as transforms from "./transforms";
export { toDataFrame, makeTable, type Table } from "./util/table";
export { display, displayProgress, clearOutput } from "./display";
export * as plots from "./display/plots";
