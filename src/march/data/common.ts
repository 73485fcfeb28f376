/** Op tables shared by the Nash marches; each march file composes its own from these. */
import type { ComboRule, OpRule } from "../spec";
import type { OpType } from "../../ops/opTypes";

const Q = ["qint8", "qint16"] as const;
const quantized = [...Q];

/**
 * No int16 activation together with an int16 weight (or second operand) on one GEMM. The
 * broadcast mul + sum rewrite is offered where it applies: a Linear (`rewrite: true`).
 */
export const noInt16Pair = (second: "weight" | "input_1", opts: { rewrite?: boolean } = {}): ComboRule => ({
  when: { input_0: "qint16", [second]: "qint16" },
  rule: `cannot take int16 input with int16 ${second === "weight" ? "weight" : "second operand"}`,
  fixes:
    second === "weight"
      ? [
          "quantize the input to int8: ModuleNameQconfigSetter({ '{op}': getQconfig({ inDtype: qint8 }) })",
          "quantize the weight to int8: ModuleNameQconfigSetter({ '{op}': getQconfig({ weightDtype: qint8 }) })",
          ...(opts.rewrite
            ? ["rewrite it with qb.transforms.replaceLinearWithBroadcastMulSum(model, '{module}') (int16 mul + sum)"]
            : []),
        ]
      : ["quantize one operand to int8: ModuleNameQconfigSetter({ '{op}': getQconfig({ inDtype: qint8 }) })"],
});

export function gemm(forbidden: ComboRule[] = []): OpRule {
  return { input: quantized, weight: quantized, output: [...Q, "float32"], forbidden };
}

export function matmul(forbidden: ComboRule[] = []): OpRule {
  return { input: quantized, output: [...Q, "float32"], forbidden };
}

// (vector / lut: which unit runs the op is its registry entry's `unit`; the rules here are the same)
const vector: OpRule = { input: quantized, output: quantized };
const lut: OpRule = { input: quantized, output: quantized };

/** Ops every Nash march runs the same way. */
export const nashCommonOps: Partial<Record<OpType, OpRule>> = {
  QuantStub: { input: ["float32"], output: quantized },
  DeQuantStub: { input: [...Q, "float32"], output: ["float32"] },
  Mul: { ...vector, weight: quantized },
  Add: vector,
  Sub: vector,
  // assumption: division runs as a reciprocal table plus a multiply, costed as one vector pass
  Div: vector,
  Sum: vector,
  Mean: vector,
  Concat: vector,
  Transpose: vector,
  BatchNorm: vector,
  ReLU: vector,
  Sigmoid: lut,
  Tanh: lut,
  Exp: lut,
  Rsqrt: lut,
  // The op set of deployment CNNs and transformers. Units are assumptions of the right kind (the
  // public docs list these ops as BPU-supported without per-unit figures): nonlinear functions as
  // tables, moves / selections / pooling / resize / softmax on the vector unit.
  Clip: vector,
  HardSigmoid: lut,
  HardSwish: lut,
  SiLU: lut,
  GELU: lut,
  LeakyReLU: lut,
  Sqrt: lut,
  Reciprocal: lut,
  ELU: lut,
  Softplus: lut,
  Mish: lut,
  SELU: lut,
  Abs: lut,
  Neg: lut,
  Log: lut,
  PReLU: vector,
  Maximum: vector,
  Minimum: vector,
  MaskedFill: vector,
  Where: vector,
  MinReduce: vector,
  Tile: vector,
  DepthToSpace: vector,
  SpaceToDepth: vector,
  LogSoftmax: vector,
  InstanceNorm: vector,
  // assumption: BEV models' grid sampling on the vector unit, like the other resamplers
  GridSample: vector,
  Pow: lut,
  Softmax: vector,
  MaxReduce: vector,
  MaxPool2d: vector,
  AvgPool2d: vector,
  AdaptiveAvgPool2d: vector,
  ResizeNearest: vector,
  ResizeBilinear: vector,
  Slice: vector,
  Gather: vector,
  Expand: vector,
  Pad: vector,
};

/** NASH_E and NASH_M: the common ops, and GEMMs that refuse int16 on both sides. */
export const nashEMOps: Partial<Record<OpType, OpRule>> = {
  ...nashCommonOps,
  Linear: gemm([noInt16Pair("weight", { rewrite: true })]),
  Conv2d: gemm([noInt16Pair("weight")]),
  // assumption: a transposed convolution runs on the same MAC array under the same dtype rule as Conv
  ConvTranspose2d: gemm([noInt16Pair("weight")]),
  Matmul: matmul([noInt16Pair("input_1")]),
};
