/**
 * What a chip accepts and how fast it runs, as plain data per march (one file each under
 * `data/`). Rules are checked by `checkModel`; perf parameters feed `perf`.
 */
import type { DTypeName } from "../quant/dtypes";
import type { March } from "./march";
import type { OpType } from "../ops/opTypes";

/** The dtype roles of an op: activation inputs by index, weight, output. */
export type Role = "input_0" | "input_1" | "weight" | "output";

export interface ComboRule {
  /** The combination that is not allowed, e.g. { input_0: "qint16", weight: "qint16" }. */
  when: Partial<Record<Role, DTypeName>>;
  /** The rule in words, e.g. "no int16 input together with an int16 weight". */
  rule: string;
  /** How to get around it; `{op}` / `{module}` are replaced by the op name / module path. */
  fixes: string[];
}

/** What a march allows of an op (the unit that runs it is the op's own, in its registry entry). */
export interface OpRule {
  /** Allowed dtypes of every activation input. */
  input: DTypeName[];
  weight?: DTypeName[];
  output: DTypeName[];
  forbidden?: ComboRule[];
}

/**
 * Parameters of the analytic latency model. Each march file says where its numbers come from;
 * they are estimates, not measurements on a chip.
 */
export interface PerfParams {
  /** int8 x int8 multiply-accumulates per second of the tensor unit (peak). */
  macsPerSecond: number;
  /** Fraction of peak a layer of this size reaches. */
  gemmUtilization: number;
  /** Throughput relative to int8 x int8, by "input x weight" dtype pair. */
  macRate: Record<"qint8xqint8" | "qint16xqint8" | "qint8xqint16" | "qint16xqint16", number>;
  /** Elementwise operations per second of the vector unit on int8 data (int16 runs at half). */
  vectorOpsPerSecond: number;
  /** Lookups per second of the LUT unit. */
  lutOpsPerSecond: number;
  /** DDR bandwidth in bytes per second. */
  bytesPerSecond: number;
  /** Fixed cost per op (dispatch, synchronisation), seconds. */
  opOverheadSeconds: number;
  /** Element operations per second of an op with no BPU rule (run on the CPU). */
  cpuOpsPerSecond: number;
}

export interface MarchSpec {
  march: March;
  /** Chip name, e.g. "J6M". */
  chip: string;
  /** A rule per op type the march runs; an op type without one is assumed to run on the CPU. */
  ops: Partial<Record<OpType, OpRule>>;
  perf: PerfParams;
}

/** The march's rule for an op type read from an IR or a model (a string), or undefined when it has none. */
export function ruleFor(spec: MarchSpec, type: string): OpRule | undefined {
  return (spec.ops as Record<string, OpRule | undefined>)[type];
}
