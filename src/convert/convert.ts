/**
 * `convert(ir, march)`: checks the chip's rules (one error listing every violation) and builds
 * an integer-arithmetic model of the IR. `hb.forward(x)` runs it: float in, float out, integer
 * codes in between (int8/int16 activations, int32 accumulators and biases, fixed-point
 * requantization, LUTs, saturation).
 *
 * ```ts
 * const hb = qb.convert(qb.export(calib, x), qb.March.NASH_M);
 * const y = hb.forward(x);
 * ```
 */
import * as tf from "@tensorflow/tfjs";
import type { Ir, IrNode } from "../ir/types";
import { validateIr } from "../ir/validate";
import { checkModel, type CheckResult } from "../march/check";
import { March } from "../march/march";
import { addSub, batchNorm, buildLut, concat, conv2d, deQuantStub, linear, matmul, mul, operandOf, quantStub, reduce, transpose } from "./kernels";
import { requantize, type Value } from "./value";

type Kernel = (inputs: Value[]) => Value;

function kernelFor(node: IrNode): Kernel {
  const scalar = node.attrs.scalar as number | undefined;
  const scalarIndex = (node.attrs.scalarIndex as number | undefined) ?? 1;
  const extra = (): Value[] => [
    ...(node.weight ? [{ data: Float64Array.from(node.weight.data), shape: node.weight.shape, quant: node.weight.quant }] : []),
    ...node.params.map((p) => ({ data: Float64Array.from(p.data), shape: p.shape, quant: { dtype: "float32" as const, scale: null } })),
  ];
  switch (node.type) {
    case "QuantStub":
      return ([x]) => quantStub(node, x);
    case "DeQuantStub":
      return ([x]) => deQuantStub(x);
    case "Linear":
      return ([x]) => linear(node, x);
    case "Conv2d":
      return ([x]) => conv2d(node, x);
    case "Matmul":
      return ([a, b]) => matmul(node, a, b);
    case "Mul": {
      const more = extra();
      return (xs) => mul(node, [...xs, ...more].map(operandOf), scalar);
    }
    case "Add":
    case "Sub": {
      const more = extra();
      return (xs) => addSub(node, [...xs, ...more].map(operandOf), node.type === "Add" ? 1 : -1, scalar, scalarIndex);
    }
    case "Sum":
      return ([x]) => reduce(node, x, false);
    case "Mean":
      return ([x]) => reduce(node, x, true);
    case "Concat":
      return (xs) => concat(node, xs);
    case "Transpose":
      return ([x]) => transpose(node, x);
    case "BatchNorm":
      return ([x]) => batchNorm(node, x);
    case "Sigmoid":
    case "Tanh":
    case "Exp":
    case "Rsqrt":
    case "ReLU": {
      const lut = buildLut(node);
      return ([x]) => lut(x);
    }
    default:
      throw new Error(`convert: ${node.name}: op type ${node.type} has no integer implementation; keep it out of the quantized graph`);
  }
}

export class HbModel {
  private readonly kernels: Kernel[];

  constructor(
    readonly ir: Ir,
    readonly march: March,
    /** The chip-rule check convert ran (ok). */
    readonly check: CheckResult,
  ) {
    this.kernels = ir.nodes.map(kernelFor);
  }

  /** One line about the model: chip, node count, inputs and outputs. */
  get caption(): string {
    const inputs = this.ir.inputs.map((i) => `[${i.shape.join(", ")}]`).join(", ");
    return `Integer model for ${this.march}: ${this.ir.nodes.length} nodes, input ${inputs}, output ${this.ir.outputs.join(", ")}`;
  }

  /** Its nodes by op type, and the dtypes they compute in. */
  get text(): string {
    const byType = new Map<string, number>();
    for (const n of this.ir.nodes) byType.set(n.type, (byType.get(n.type) ?? 0) + 1);
    const dtypes = new Map<string, number>();
    for (const n of this.ir.nodes) {
      const d = n.output.quant.dtype;
      dtypes.set(d, (dtypes.get(d) ?? 0) + 1);
    }
    const list = (m: Map<string, number>) => [...m].map(([k, v]) => `${k} ×${v}`).join(", ");
    return `ops: ${list(byType)}\noutput dtypes: ${list(dtypes)}\nchip rules: ${this.check.violations.length === 0 ? "every op passes" : `${this.check.violations.length} violations`}`;
  }

  /** Runs the integer model. Float tensors in, float tensors out (one or a list, as the model). */
  forward(...inputs: tf.Tensor[]): tf.Tensor {
    const outs = this.run(inputs);
    return (outs.length === 1 ? outs[0] : outs) as tf.Tensor;
  }

  private run(inputs: tf.Tensor[]): tf.Tensor[] {
    if (inputs.length !== this.ir.inputs.length) {
      throw new Error(`HbModel.forward: expected ${this.ir.inputs.length} input(s), got ${inputs.length}`);
    }
    const values = new Map<string, Value>();
    inputs.forEach((t, i) => {
      const want = this.ir.inputs[i].shape;
      if (t.shape.length !== want.length || t.shape.some((d, k) => d !== want[k])) {
        throw new Error(`HbModel.forward: input ${i} has shape [${t.shape}], the model was exported with [${want}]`);
      }
      values.set(`<input:${i}>`, { data: Float64Array.from(t.dataSync()), shape: t.shape, quant: { dtype: "float32", scale: null } });
    });
    this.ir.nodes.forEach((node, k) => {
      const args = node.inputs.map((inp, i) => {
        let v: Value;
        if (inp.source === "<float>") {
          const c = node.constants.find((x) => x.input === i);
          v = { data: Float64Array.from(c?.data ?? []), shape: inp.shape, quant: { dtype: "float32", scale: null } };
        } else {
          const produced = values.get(inp.source) as Value;
          v = { ...produced, shape: inp.shape }; // reshapes between ops keep the data order
        }
        return inp.requant ? requantize(v, inp.quant, `${node.name} input ${i}`) : v;
      });
      values.set(node.name, this.kernels[k](args));
    });
    return this.ir.outputs.map((name) => {
      const v = values.get(name) as Value;
      const real = v.quant.dtype === "float32" ? v.data : deQuantStub(v).data;
      return tf.tensor(Float32Array.from(real), v.shape, "float32");
    });
  }
}

/**
 * Checks `ir` against `march` and builds its integer model. Violations of the chip's rules
 * are one error that lists them all, each with its fix.
 */
export function convert(ir: Ir, march: March): HbModel {
  validateIr(ir, "convert");
  if (!Object.values(March).includes(march)) {
    throw new Error(`convert: unknown march '${String(march)}'; expected one of ${Object.keys(March).map((k) => `March.${k}`).join(", ")}`);
  }
  const check = checkModel(ir, march);
  if (!check.ok) {
    throw new Error(`convert: ${check.violations.length} violation(s) of the ${march} rules:\n${check.violations.map((v) => `  - ${v.message}`).join("\n")}`);
  }
  return new HbModel(ir, march, check);
}
