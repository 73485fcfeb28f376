/**
 * `qb.analysis`: why a quantized model loses precision and what to do about it — the debug tool
 * (`QuantAnalysis`: statistics, sensitivity, per-layer comparison, advisor), what `prepare`
 * decided (`quantSummary`, `preparedOps`, `modelCheckResult`), evaluation on data, the choice of
 * calibration, bias correction and the mixed-precision planner.
 */
export {
  QuantAnalysis,
  scaleExplorer,
  weightQuantError,
  METRICS,
  metric,
  type Metric,
  type SensitivityResult,
  type BadCaseRow,
  type ScaleRow,
  type ScaleSetting,
  type SensitivityRow,
  type StatRow,
  type LayerRow,
  type AdviceRow,
  type WeightErrorRow,
} from "../analysis";
export { quantSummary, type SummaryRow } from "../analysis/summary";
export { modelCheckResult, preparedOps } from "../workflow/prepare";
export { getFakeQuantState } from "../workflow/setFakeQuantize";
export type { CheckReport } from "../workflow/checkReport";
export type { OpInfo, Graph } from "../workflow/graph";
export {
  evaluate,
  MIN_COSINE,
  type Evaluation,
  type EvaluateOptions,
  type EvaluateRow,
  type Task,
} from "../analysis/evaluate";
export { chooseCalibration, type CalibrationChoice, type CalibrationMethod } from "../analysis/calibrationChoice";
export { biasCorrection, type BiasCorrectionRow } from "../analysis/biasCorrection";
export {
  planMixedPrecision,
  loadPlan,
  type MixedPrecisionPlan,
  type PlannerOptions,
  type PlanRow,
  type SavedPlan,
} from "../planner/planMixedPrecision";
