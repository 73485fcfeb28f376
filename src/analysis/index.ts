export { QuantAnalysis, type SensitivityResult, type Table, type BadCaseRow } from "./quantAnalysis";
export { sensitiveOpQconfigSetter, type SensitiveSetterOptions } from "./sensitiveSetter";
export { scaleExplorer, type ScaleRow, type ScaleSetting } from "./scaleExplorer";
export { METRICS, metric, type Metric } from "./metrics";
export type { SensitivityRow } from "./sensitivity";
export type { StatRow } from "./statistics";
export type { LayerRow } from "./comparePerLayer";
export type { AdviceRow } from "./advisor";
export { weightQuantError, type WeightErrorRow } from "./weightError";
