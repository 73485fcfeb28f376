import * as tf from "@tensorflow/tfjs";
import { flopsOf, opDef } from "../ops";
import { currentForward } from "./forwardContext";
import type { Compute, OpCall } from "./runtime";
import { errors } from "../messages";
import type { OpType } from "../ops/opTypes";

export interface OpSpec {
  type: OpType;
  /** Name inside the running module; null for the module's own op (a Linear's path is its name). */
  name: string | null;
  /** Name used when the op runs at the root, or outside any module. */
  fallback: string;
  weight?: tf.Tensor | undefined;
  params?: tf.Tensor[];
  attrs?: Record<string, unknown>;
}

function describeShapes(inputs: tf.Tensor[]): string {
  return inputs.map((t) => `[${t.shape}]`).join(" and ");
}

/** Runs `compute`, turning a backend error into one that names the op and the input shapes. */
function computeWithContext(name: string, type: string, compute: Compute): Compute {
  return (inputs, weight, params) => {
    try {
      return compute(inputs, weight, params);
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      if (msg.startsWith(`${name} (`)) throw e;
      throw errors.opFailed(name, type, e, describeShapes(inputs));
    }
  };
}

/**
 * Runs one quantization-aware op of the registry (its float compute and flops come from there):
 * names it after the running module, then lets the prepared model's interceptor (if any)
 * fake-quantize its inputs, weight and output.
 */
export function runOp(spec: OpSpec, inputs: tf.Tensor[]): tf.Tensor {
  const def = opDef(spec.type, spec.fallback);
  const attrs = spec.attrs ?? {};
  // intermediates of the op's compute are freed; only its result survives. An op that returns its
  // input (a stub, an identity reshape) still gets an output of its own, so the tracer never
  // mistakes one op's output for another's (a constant shared by several ops, say).
  const compute: Compute = (ins, w, ps) =>
    tf.tidy(() => {
      const out = def.compute(ins, w, ps, attrs);
      return ins.includes(out) || out === w ? tf.clone(out) : out;
    });
  for (const [i, t] of inputs.entries()) {
    if (!(t instanceof tf.Tensor)) {
      throw errors.notATensor(`${spec.fallback} (${spec.type})`, `input ${i}`, t);
    }
  }
  const fwd = currentForward();
  const params = spec.params ?? [];
  if (fwd === null) return computeWithContext(spec.fallback, spec.type, compute)(inputs, spec.weight, params);
  const name = fwd.opName(spec.name, spec.fallback);
  const guarded = computeWithContext(name, spec.type, compute);
  if (fwd.interceptor === null) return guarded(inputs, spec.weight, params);
  const call: OpCall = {
    name,
    type: spec.type,
    modulePath: fwd.modulePath(),
    inputs,
    weight: spec.weight,
    params,
    flops: flopsOf(
      def,
      inputs.map((t) => t.shape),
      spec.weight?.shape,
      attrs,
    ),
    attrs,
  };
  return fwd.interceptor.runOp(call, guarded);
}

/** Options every `qb.F` function takes: the op's name inside its module (null: the module's own op). */
export interface Named {
  name?: string | null;
}

/**
 * One call of a one-input op: named `fallback` (or `o.name`) inside the running module. The
 * generated `qb.F` functions and the ONNX importer's registry handlers all come through here.
 */
export function runUnary(type: OpType, fallback: string, x: tf.Tensor, attrs: Record<string, unknown>, o?: Named) {
  return runOp({ type, name: o?.name === undefined ? fallback : o.name, fallback, attrs }, [x]);
}

/** Name of the running op's module path, for error messages raised before runOp. */
export function currentModulePath(fallback: string): string {
  const fwd = currentForward();
  return fwd === null ? fallback : fwd.modulePath() || fallback;
}
