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
import { DISPLAY, textBundle, type MimeBundle } from "../util/display";
import * as tf from "@tensorflow/tfjs";
import type { Ir, IrNode } from "../ir/types";
import { validateIr } from "../ops/validateIr";
import { checkModel, type CheckResult } from "../march/check";
import { March } from "../march/march";
import { opDef, type IntKernel } from "../ops";
import { requantize, toReal, type Value } from "../ops/int/value";
import { errors } from "../messages";

/** The integer kernel of a node, from the op registry. */
function kernelFor(node: IrNode): IntKernel {
  return opDef(node.type, `convert: ${node.name}`).integer(node);
}

export class HbModel {
  private readonly kernels: IntKernel[];

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

  /** Its notebook display (the display protocol): the caption and the summary text. */
  [DISPLAY](): MimeBundle {
    return textBundle(this.caption, this.text);
  }

  /** Runs the integer model. Float tensors in, float tensors out (one or a list, as the model). */
  forward(...inputs: tf.Tensor[]): tf.Tensor {
    const outs = this.run(inputs);
    return (outs.length === 1 ? outs[0] : outs) as tf.Tensor;
  }

  private run(inputs: tf.Tensor[]): tf.Tensor[] {
    if (inputs.length !== this.ir.inputs.length) {
      throw errors.invalidArgument(
        "HbModel.forward",
        `${inputs.length} input(s) given`,
        `pass ${this.ir.inputs.length}, one per model input`,
      );
    }
    const values = new Map<string, Value>();
    inputs.forEach((t, i) => {
      const want = this.ir.inputs[i].shape;
      if (t.shape.length !== want.length || t.shape.some((d, k) => d !== want[k])) {
        throw errors.shapeMismatch(
          "HbModel.forward",
          `input ${i} has shape [${t.shape}]`,
          `[${want}], the shape the model was exported with`,
        );
      }
      values.set(`<input:${i}>`, {
        data: Float64Array.from(t.dataSync()),
        shape: t.shape,
        quant: { dtype: "float32", scale: null },
      });
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
      const real = toReal(v);
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
    throw errors.unknownMarch("convert", march, Object.keys(March));
  }
  const check = checkModel(ir, march);
  // ops without a rule (assumed CPU) are simulated like the rest; refused dtypes stop the conversion
  const refused = check.violations.filter((v) => v.kind === "rule");
  if (refused.length > 0) {
    throw errors.chipRules(
      march,
      refused.map((v) => v.message),
    );
  }
  return new HbModel(ir, march, check);
}
