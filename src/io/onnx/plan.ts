/**
 * From ONNX nodes to the steps an OnnxGraphModule runs: each node (or fused pattern) becomes a
 * step that computes its outputs either with plain tfjs (all inputs constant: shape plumbing) or
 * with the registry's quantization-aware ops, named after the node's module path.
 */
import * as tf from "@tensorflow/tfjs";
import type { Module } from "../../nn/module";
import { runOp } from "../../nn/op";
import { errors } from "../../messages";
import { OnnxScope, type OnnxGraphModule } from "./graphModule";
import type { AttrValue, OnnxNode } from "./proto";
import { registryHandlers, type NodeContext, type Ins, type Handler } from "./handlers/kit";
import { elementwiseHandlers } from "./handlers/elementwise";
import { activationHandlers } from "./handlers/activation";
import { reduceHandlers } from "./handlers/reduce";
import { layoutHandlers } from "./handlers/layout";

export type { NodeContext } from "./handlers/kit";
export { to1d, to2d, lift1dAttr } from "./handlers/kit";

export interface PlanStep {
  node: string;
  /** The node's ONNX op type (the first node's, for a fused pattern). */
  opType?: string;
  inputs: string[];
  outputs: string[];
  /** Outputs are constants whatever the inputs (Shape, Size: they read only the input's shape). */
  constOutputs?: boolean;
  /** `constInputs`: which inputs are constants in this run (initializers or folded from them). */
  run(root: OnnxGraphModule, ins: (tf.Tensor | undefined)[], allConst: boolean, constInputs?: boolean[]): tf.Tensor[];
}

/**
 * Every ONNX op type quantbook imports: those registry entries import one-to-one, then the
 * handlers by family (src/io/onnx/handlers/, mirroring src/ops/). An ONNX op has one way in.
 */
const HANDLERS: Record<string, Handler> = (() => {
  const all = registryHandlers();
  for (const family of [elementwiseHandlers, activationHandlers, reduceHandlers, layoutHandlers]) {
    for (const [op, h] of Object.entries(family)) {
      if (op in all) throw errors.internal("ONNX importer", `${op} has a handler and a registry entry's onnxImport`);
      all[op] = h;
    }
  }
  return all;
})();

export function handledOpTypes(): string[] {
  return [
    ...Object.keys(HANDLERS),
    "Constant",
    "Conv",
    "ConvTranspose",
    "Gemm",
    "MatMul",
    "BatchNormalization",
    "LayerNormalization",
    "LSTM",
    "GRU",
    "RNN",
  ];
}

/**
 * How an ONNX op reads a constant input (an initializer, or a value folded from them):
 * - `moves`: the op only moves, selects or compares values, or reads shapes and bounds — a
 *   constant input stays as it is, except the listed data inputs, which are quantized like
 *   activations (the embedding table a Gather reads, the values a Where picks);
 * - `params`: the listed inputs are the op's float parameters, never quantized as activations.
 * Any other op quantizes a constant that meets activations, through a QuantStub of its own.
 */
export const OPERANDS: Record<string, { moves?: number[]; params?: number[] }> = {
  Reshape: { moves: [] },
  Flatten: { moves: [] },
  Squeeze: { moves: [] },
  Unsqueeze: { moves: [] },
  Shape: { moves: [] },
  Size: { moves: [] },
  Cast: { moves: [] },
  Identity: { moves: [] },
  Dropout: { moves: [] },
  Slice: { moves: [] },
  Gather: { moves: [0] },
  Split: { moves: [] },
  Pad: { moves: [] },
  Expand: { moves: [0] },
  Resize: { moves: [] },
  Upsample: { moves: [] },
  Clip: { moves: [] },
  Pow: { moves: [] },
  ConstantOfShape: { moves: [] },
  Range: { moves: [] },
  Equal: { moves: [] },
  Where: { moves: [1, 2] },
  Tile: { moves: [] },
  ReduceMin: { moves: [] },
  ReduceProd: { moves: [] },
  ReduceL1: { moves: [] },
  ReduceL2: { moves: [] },
  ReduceSumSquare: { moves: [] },
  ArgMax: { moves: [] },
  Trilu: { moves: [] },
  Less: { moves: [] },
  Greater: { moves: [] },
  LessOrEqual: { moves: [] },
  GreaterOrEqual: { moves: [] },
  And: { moves: [] },
  Or: { moves: [] },
  Xor: { moves: [] },
  Not: { moves: [] },
  Floor: { moves: [] },
  Ceil: { moves: [] },
  Round: { moves: [] },
  Sign: { moves: [] },
  Mod: { moves: [] },
  PRelu: { params: [1] },
  InstanceNormalization: { params: [1, 2] },
};

/** The op only moves, selects or compares its inputs (see OPERANDS). */
export const movesValues = (opType: string): boolean => OPERANDS[opType]?.moves !== undefined;

/**
 * A float constant tensor (a class token, a position embedding) that meets activations in a
 * quantized op enters the graph through a QuantStub of its own, so it is quantized like any input.
 */
function quantizeConstants(ctx: NodeContext, ins: Ins, constInputs: boolean[]): Ins {
  // ops that move or select data quantize only a constant that *is* the data they move — an
  // embedding table gathered by token ids, the values a Where picks — never indices or shapes
  const dataInputs = OPERANDS[ctx.node.opType]?.moves ?? null;
  return ins.map((t, k) => {
    if (t === undefined || t.dtype !== "float32" || t.size <= 1 || !constInputs[k]) return t;
    if (dataInputs !== null && !dataInputs.includes(k)) return t;
    if (OPERANDS[ctx.node.opType]?.params?.includes(k)) return t;
    return runOp(
      { type: "QuantStub", name: `${ctx.opName ?? ctx.node.opType.toLowerCase()}_const${k}`, fallback: "quant" },
      [t],
    );
  });
}

/** A step for a node with a handler; runs its quantized ops in the node's scope module. */
export function handlerStep(ctx: NodeContext): PlanStep {
  const h = HANDLERS[ctx.node.opType];
  const shapeOnly = ctx.node.opType === "Shape" || ctx.node.opType === "Size";
  return {
    node: ctx.node.name,
    inputs: ctx.node.inputs,
    outputs: ctx.node.outputs,
    constOutputs: shapeOnly,
    run(root, ins, allConst, constInputs = []) {
      if (allConst) return h(ctx, ins, true);
      const scope = root.moduleAt(ctx.path);
      const run = () => h(ctx, quantizeConstants(ctx, ins, constInputs), false, constInputs);
      return scope instanceof OnnxScope ? scope.inScope(run) : run();
    },
  };
}

/**
 * A step that runs a layer (Conv2d, Linear, ...) found at `path` when it runs; `pre` and `post`
 * are data moves around it (padding before, a crop or transpose after) that keep the scale.
 */
export function moduleStep(
  node: OnnxNode,
  path: string,
  input: string,
  outputs: string[],
  pre?: (x: tf.Tensor) => tf.Tensor,
  post?: (y: tf.Tensor) => tf.Tensor,
): PlanStep {
  return {
    node: node.name,
    inputs: [input],
    outputs,
    run(root, ins) {
      const m = root.moduleAt(path) as Module | undefined;
      if (m === undefined)
        throw errors.invalidArgument(
          "OnnxGraphModule",
          `no layer at '${path}'`,
          "was it removed or renamed by a transform? apply transforms to the loaded model, not to its children",
        );
      const x = ins[0] as tf.Tensor;
      const y = (m.forward as (t: tf.Tensor) => tf.Tensor)(pre ? pre(x) : x);
      return [post ? post(y) : y];
    },
  };
}

export function contextOf(node: OnnxNode, opset: number, path: string, opName: string | null): NodeContext {
  return {
    node,
    opset,
    path,
    opName,
    attr: ((name: string, fallback: AttrValue) =>
      name in node.attrs && node.attrs[name] !== null ? node.attrs[name] : fallback) as NodeContext["attr"],
  };
}
