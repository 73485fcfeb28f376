/**
 * An ONNX graph as a `qb.nn.Module`. Weighted nodes become qb.nn layers at the module path torch
 * gave them (`layer1.0.conv1` is a `Conv2d`, a transformer projection a `Linear`), so sensitivity
 * tables, ModuleNameQconfigSetter and the transforms (fuseConvBn, replaceLinearWithBroadcastMulSum)
 * work on it; other float constants are parameters of the root named after their initializer.
 *
 * `forward(...inputs)` interprets the graph in order. A node whose inputs are all constants —
 * shape plumbing: Shape, Gather / Slice / Concat on shapes, Cast, ConstantOfShape, Range, Equal,
 * Where, ... — is computed right there with plain tfjs (constant folding once the input shape is
 * known), so it never becomes a quantized op; every other node runs through the registry's ops.
 */
import * as tf from "@tensorflow/tfjs";
import { carriesContext, errors } from "../../messages";
import { DeQuantStub, QuantStub } from "../../nn/layers";
import { Module } from "../../nn/module";
import { currentForward, declareConstant } from "../../nn/forwardContext";
import type { ConstValue } from "./proto";
import type { PlanStep } from "./plan";

/** A container at a module path; runs the ops of its scope so they are named after it. */
export class OnnxScope extends Module {
  forward(run: () => tf.Tensor[]): tf.Tensor | tf.Tensor[] {
    return run();
  }

  /** Runs `run` as this module (its ops named after it); its list of outputs as it returned them. */
  inScope(run: () => tf.Tensor[]): tf.Tensor[] {
    return this.forward(run) as tf.Tensor[];
  }
}

const stubName = (kind: string, i: number) => (i === 0 ? kind : `${kind}_${i}`);

export function constTensor(c: ConstValue): tf.Tensor {
  return tf.tensor(c.data, c.dims, c.dtype);
}

export interface OnnxInfo {
  file: string;
  opset: number;
  producer: string;
  nodes: number;
  /** Layout Transposes removed at import (pairs cancelled through layout-agnostic ops: tf2onnx's NHWC plumbing). */
  transposesRemoved: number;
  inputs: { name: string; dims: (number | string)[] }[];
  outputs: string[];
}

export class OnnxGraphModule extends OnnxScope {
  /** What was imported: file, opset, producer, node count, inputs and outputs. */
  readonly onnx: OnnxInfo;
  readonly plan: PlanStep[];
  /**
   * The root field holding each constant value by its ONNX name: float constants are parameters
   * (tf.Variable, in the state dict under their initializer name), integer / bool ones (shape
   * plumbing) plain tensors.
   */
  readonly constFields: Record<string, string>;

  constructor(info: OnnxInfo, plan: PlanStep[], constFields: Record<string, string>) {
    super();
    this.onnx = info;
    this.plan = plan;
    this.constFields = constFields;
    // the QuantStub and DeQuantStub an exported graph implies at its inputs and outputs
    const holder = this as unknown as Record<string, Module>;
    info.inputs.forEach((_, i) => (holder[stubName("quant", i)] = new QuantStub()));
    info.outputs.forEach((_, i) => (holder[stubName("dequant", i)] = new DeQuantStub()));
  }

  /** The module at a dotted path (looked up on every call, so transforms that replace a layer apply). */
  moduleAt(path: string): Module | undefined {
    return path.split(".").reduce<Module | undefined>((m, seg) => {
      const child = m === undefined || seg === "" ? m : (m as unknown as Record<string, unknown>)[seg];
      return child instanceof Module ? child : undefined;
    }, this);
  }

  /**
   * Runs the graph: one Tensor when the graph has one output, else one per graph output in the
   * file's order (`forwardAll` always returns the list). Cast to the one you expect:
   * `model.forward(x) as tf.Tensor`.
   */
  override forward(...args: unknown[]): tf.Tensor | tf.Tensor[] {
    if (typeof args[0] === "function") return super.forward(args[0] as () => tf.Tensor[]);
    const outs = this.interpret(args as tf.Tensor[], null);
    return outs.length === 1 ? outs[0] : outs;
  }

  /** The graph's outputs as a list, in the file's order, however many there are. */
  forwardAll(...inputs: tf.Tensor[]): tf.Tensor[] {
    const out = this.forward(...inputs);
    return Array.isArray(out) ? out : [out];
  }

  /**
   * Every value the graph computes on `inputs`, by its ONNX name (float, outside any prepared
   * model): for finding where an import diverges from another runtime. The caller disposes them.
   */
  values(...inputs: tf.Tensor[]): Map<string, tf.Tensor> {
    const seen = new Map<string, tf.Tensor>();
    const out = new Map<string, tf.Tensor>();
    tf.tidy(() => {
      this.interpret(inputs, seen);
      // clones: some values are the model's own constants or the caller's inputs (Identity)
      seen.forEach((t, k) => out.set(k, tf.keep(tf.clone(t))));
      return [];
    });
    return out;
  }

  private interpret(inputs: tf.Tensor[], seen: Map<string, tf.Tensor> | null): tf.Tensor[] {
    const info = this.onnx;
    if (inputs.length !== info.inputs.length) {
      throw errors.invalidArgument(
        `OnnxGraphModule (${info.file})`,
        `the graph takes ${info.inputs.length} input(s) (${info.inputs.map((i) => i.name).join(", ")}), got ${inputs.length}`,
        "pass one tensor per graph input, in that order",
      );
    }
    const env = new Map<string, tf.Tensor>();
    const isConst = new Set<string>();
    const holder = this as unknown as Record<string, QuantStub>;
    inputs.forEach((t, i) =>
      env.set(info.inputs[i].name, t.dtype === "float32" ? holder[stubName("quant", i)].forward(t) : t),
    );
    const fields = this as unknown as Record<string, tf.Tensor>;
    const lookup = (name: string): tf.Tensor | undefined => {
      if (name === "") return undefined;
      const v = env.get(name);
      if (v !== undefined) return v;
      const field = this.constFields[name];
      if (field === undefined) return undefined;
      isConst.add(name);
      return fields[field];
    };
    for (const step of this.plan) {
      const ins = step.inputs.map(lookup);
      const allConst = step.inputs.every((n, i) => n === "" || ins[i] === undefined || isConst.has(n));
      let outs: tf.Tensor[];
      // the ops this node runs record its name (names both ways: quantbook's op ↔ the file's node)
      const fwd = currentForward();
      const outer = fwd?.source ?? null;
      if (fwd) fwd.source = { node: step.node, opType: step.opType ?? "" };
      try {
        outs = step.run(
          this,
          ins,
          allConst,
          step.inputs.map((n) => isConst.has(n)),
        );
      } catch (e) {
        if (carriesContext(e) && e.message.includes(step.node)) throw e;
        const shapes = ins.map((t) => (t === undefined ? "-" : `[${t.shape}]`)).join(", ");
        throw errors.inContext(`${info.file}: node ${step.node} (inputs ${shapes})`, e);
      } finally {
        if (fwd) fwd.source = outer;
      }
      outs.forEach((t, i) => {
        const name = step.outputs[i];
        if (name === undefined || name === "") return;
        env.set(name, t);
        seen?.set(name, t);
        if (allConst || step.constOutputs) {
          isConst.add(name);
          // computed from constants and shapes: a constant of the model for a prepared model's trace
          if (t.dtype === "float32") declareConstant(t);
        }
      });
    }
    const outs = info.outputs.map((o, i) => {
      const t = lookup(o);
      if (t === undefined)
        throw errors.unsupported(
          `OnnxGraphModule (${info.file})`,
          `a graph output ('${o}') that no node computes`,
          "check the file with onnx.checker.check_model",
        );
      return t.dtype === "float32"
        ? (holder as unknown as Record<string, DeQuantStub>)[stubName("dequant", i)].forward(t)
        : t;
    });
    return outs;
  }
}
