import type { Module } from "../nn/module";
import { FLOAT, type DTypeName } from "../quant/dtypes";
import type { Ir } from "../ir/types";
import type { OpRule } from "./spec";
import { FLOAT_CONSTANT, isModelInput } from "../workflow/graph";
import { runtimeOf } from "../workflow/quantRuntime";

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
  const rt = runtimeOf(modelOrIr, "checkModel");
  return [...rt.ops.values()].map((op) => ({
    name: op.info.name,
    type: op.info.type,
    module: op.info.modulePath,
    inputs: op.info.inputs.map((inp, i) => {
      const requant = op.inputs[i];
      if (requant) return requant.dtype.name;
      if (isModelInput(inp.source) || inp.source === FLOAT_CONSTANT) return FLOAT;
      return rt.outputQuantizer(inp.source)?.dtype.name ?? FLOAT;
    }),
    weight: op.info.weightShape ? (op.weight?.dtype.name ?? FLOAT) : undefined,
    output: rt.outputQuantizer(op.info.name)?.dtype.name ?? FLOAT,
  }));
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
