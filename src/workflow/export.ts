import * as tf from "@tensorflow/tfjs";
import type { Module } from "../nn/module";
import { quantizeToInt } from "../quant/fakeQuantize";
import type { FakeQuantizer } from "../quant/fakeQuantizer";
import { FLOAT } from "../quant/dtypes";
import { IR_FORMAT, IR_VERSION, type Ir, type IrNode, type IrQuant } from "../ir/types";
import { validateIr } from "../ops/validateIr";
import { FLOAT_CONSTANT, isModelInput } from "./graph";
import { validatingRuntime, type PreparedOp, type TapRole } from "./quantRuntime";
import { errors } from "../messages";

const FLOAT_QUANT: IrQuant = { dtype: FLOAT, scale: null };

function quantOf(fq: FakeQuantizer | null): IrQuant {
  if (fq === null) return FLOAT_QUANT;
  const s = fq.scale();
  if (s === null) throw errors.notCalibrated("export", [fq.where]);
  const q: IrQuant = { dtype: fq.dtype.name, scale: Array.from(s, (v) => Math.fround(v)) };
  if (fq.axis !== undefined) q.axis = fq.axis;
  return q;
}

/**
 * (5) Exports a calibrated model in VALIDATION state to quantbook's IR: runs `exampleInput`
 * once to collect weights, biases and constants, and records every op's dtypes and scales.
 *
 * ```ts
 * qb.setFakeQuantize(calib, qb.FakeQuantState.VALIDATION);
 * const ir = qb.export(calib, x);
 * await qb.io.saveIr("model.qbir.json", ir);
 * ```
 */
export function exportModel(model: Module, exampleInput: tf.Tensor | tf.Tensor[]): Ir {
  const rt = validatingRuntime(model, "export");
  const args = Array.isArray(exampleInput) ? exampleInput : [exampleInput];
  const captured = new Map<string, Map<TapRole, number[]>>();
  const rawWeights = new Map<string, tf.Tensor>();
  const tap = (op: PreparedOp, role: TapRole, _value: tf.Tensor, raw: tf.Tensor) => {
    const wantInput = role.startsWith("input_") && op.info.inputs[Number(role.slice(6))]?.source === FLOAT_CONSTANT;
    if (role === "weight") rawWeights.set(op.info.name, tf.keep(tf.clone(raw)));
    else if (role.startsWith("param_") || wantInput) {
      const m = captured.get(op.info.name) ?? new Map<TapRole, number[]>();
      m.set(role, Array.from(raw.dataSync()));
      captured.set(op.info.name, m);
    }
  };
  rt.taps.push(tap);
  try {
    tf.dispose((model.forward as (...a: tf.Tensor[]) => tf.TensorContainer)(...args));
  } finally {
    rt.taps.splice(rt.taps.indexOf(tap), 1);
  }
  try {
    const nodes: IrNode[] = [];
    for (const op of rt.ops.values()) {
      const info = op.info;
      const caps = captured.get(info.name) ?? new Map<TapRole, number[]>();
      const node: IrNode = {
        name: info.name,
        type: info.type,
        module: info.modulePath,
        inputs: info.inputs.map((inp, i) => {
          const requant = op.inputs[i] ?? null;
          const producer = isModelInput(inp.source) || inp.source === FLOAT_CONSTANT ? null : rt.ops.get(inp.source);
          return {
            source: inp.source,
            shape: inp.shape,
            quant: quantOf(requant ?? (producer ? rt.outputQuantizer(producer.info.name) : null)),
            requant: requant !== null,
          };
        }),
        output: { shape: info.outputShape, quant: quantOf(rt.outputQuantizer(info.name)) },
        params: info.paramShapes.map((shape, i) => ({ shape, data: caps.get(`param_${i}`) ?? [] })),
        constants: info.inputs.flatMap((inp, i) =>
          inp.source === FLOAT_CONSTANT ? [{ input: i, data: caps.get(`input_${i}`) ?? [] }] : [],
        ),
        attrs: info.attrs,
        flops: info.flops,
      };
      const w = rawWeights.get(info.name);
      if (w !== undefined && info.weightShape) {
        const quant = quantOf(op.weight);
        const data =
          quant.scale === null
            ? Array.from(w.dataSync())
            : tf.tidy(() =>
                Array.from(
                  quantizeToInt(w, {
                    scale: quant.axis === undefined ? (quant.scale as number[])[0] : (quant.scale as number[]),
                    dtype: op.weight!.dtype,
                    axis: quant.axis,
                  }).dataSync(),
                ),
              );
        node.weight = { shape: info.weightShape, quant, data };
      }
      nodes.push(node);
    }
    const ir: Ir = {
      format: IR_FORMAT,
      version: IR_VERSION,
      march: rt.march ?? "",
      inputs: args.map((t, i) => ({ name: `<input:${i}>`, shape: t.shape })),
      outputs: rt.graph.outputs,
      nodes,
    };
    validateIr(ir, "export");
    return ir;
  } finally {
    rawWeights.forEach((t) => t.dispose());
  }
}
