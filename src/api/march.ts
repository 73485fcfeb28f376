/**
 * `qb.march`: the chips. Each march's rules (which dtypes each op may take) and cost model;
 * `checkModel` checks a prepared model against them, `perf` estimates its latency.
 */
export { getMarch } from "../march/march";
export { marchSpec } from "../march/data";
export { checkModel, type CheckResult, type Violation } from "../march/check";
export { perf, type PerfReport, type PerfOp } from "../march/perf";
export type { MarchSpec, OpRule, PerfParams } from "../march/spec";
export type { Ir, IrNode } from "../ir/types";
