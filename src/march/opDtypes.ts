import type { Module } from "../nn/module";
import { FLOAT, type DTypeName } from "../quant/dtypes";
import type { Ir } from "../ir/types";
import type { OpRule } from "./spec";
import { INTERCEPTOR } from "../nn/runtime";
import { errors } from "../messages";

/** The dtypes one op sees: what chip rules are checked against. */
export interface OpDtypes {
  name: string;
  type: string;
  module: string;
  inputs: DTypeName[];
  weight?: DTypeName | undefined;
  output: DTypeName;
}

/** Dtypes per op of a prepared model (no calibration needed) or of an IR. */
export function opDtypes(modelOrIr: Module | Ir): OpDtypes[] {
  if ((modelOrIr as Ir).format !== undefined && Array.isArray((modelOrIr as Ir).nodes)) {
    return (modelOrIr as Ir).nodes.map((n) => ({
      name: n.name,
      type: n.type,
      module: n.module,
      inputs: n.inputs.map((i) => i.quant.dtype),
      weight: n.weight?.quant.dtype,
      output: n.output.quant.dtype,
    }));
  }
  // a prepared model's runtime reports its ops' dtypes (the runtime lives in workflow, above march)
  const rt =
    modelOrIr !== null && typeof modelOrIr === "object"
      ? (modelOrIr as unknown as Record<symbol, unknown>)[INTERCEPTOR]
      : undefined;
  if (rt === null || typeof rt !== "object" || typeof (rt as Partial<DtypeSource>).opDtypes !== "function")
    throw errors.notPrepared("checkModel");
  return (rt as DtypeSource).opDtypes("checkModel");
}

/** What a prepared model's runtime offers march: the dtypes each op sees. */
export interface DtypeSource {
  opDtypes(caller: string): OpDtypes[];
}

/**
 * An op quantized nowhere — its weight in float, or its output and every input in float — where
 * the march's rule does not take those dtypes runs in float on the CPU: what the reference
 * toolchain does with a node it leaves unquantized (`'ON': 'CPU'`), and how a plan keeps a tail op
 * in float. (A DeQuantStub, whose rule takes float, stays on the BPU.)
 */
export function runsOnCpu(d: Pick<OpDtypes, "inputs" | "weight" | "output">, rule: OpRule): boolean {
  const floatWeight = d.weight === FLOAT && !(rule.weight ?? []).includes(FLOAT);
  const allFloat = d.output === FLOAT && d.inputs.length > 0 && d.inputs.every((t) => t === FLOAT);
  return floatWeight || (allFloat && !(rule.input.includes(FLOAT) && rule.output.includes(FLOAT)));
}
