/**
 * ONNX LSTM, GRU and RNN nodes (what torch.onnx.export writes for nn.LSTM / nn.GRU / nn.RNN) as
 * qb.nn.LSTM / GRU / RNN layers: compositions of registry ops, unrolled over the sequence, each
 * gate and state update a quantization point (see src/nn/recurrent.ts). Forward, reverse and
 * bidirectional; initial states as inputs (zeros when absent); the sequence output Y
 * [T, directions, B, H] and the final states Y_h (and Y_c) [directions, B, H]. What the layers
 * cannot express (peepholes, clipping, coupled gates, other activations, per-batch sequence
 * lengths, batch-major layout, GRU's linear_before_reset = 0) is refused by name.
 */
import * as tf from "@tensorflow/tfjs";
import { errors } from "../../messages";
import * as F from "../../nn/functional";
import type { Module } from "../../nn/module";
import { Recurrent, type RecurrentCell } from "../../nn/recurrent";
import type { PlanStep } from "./plan";
import type { ConstValue, OnnxNode } from "./proto";

/** What the recurrent planner needs of the import's builder. */
export interface RecurrentBuilder {
  staticValue(name: string): ConstValue | null;
  layerPath(n: OnnxNode): string;
  addLayer(path: string, m: Module): void;
  readonly steps: PlanStep[];
}

/** ONNX gate order → quantbook's (PyTorch's): LSTM i o f c → i f c o; GRU z r h → r z n. */
const GATE_ORDER: Record<string, number[]> = { LSTM: [0, 2, 3, 1], GRU: [1, 0, 2], RNN: [0] };
const DEFAULT_ACTIVATIONS: Record<string, string[]> = {
  LSTM: ["Sigmoid", "Tanh", "Tanh"],
  GRU: ["Sigmoid", "Tanh"],
  RNN: ["Tanh"],
};

/** Rows of `w` ([G·H, K], one direction) with the gate blocks reordered. */
function reorder(data: Float32Array, offset: number, gates: number[], h: number, k: number): Float32Array {
  const out = new Float32Array(gates.length * h * k);
  gates.forEach((g, j) => out.set(data.subarray(offset + g * h * k, offset + (g + 1) * h * k), j * h * k));
  return out;
}

/** Replaces a layer's parameter with `data` (the old one is freed). */
function setParam(layer: Module, field: "weight" | "bias", data: Float32Array, shape: number[]): void {
  const holder = layer as unknown as Record<string, tf.Tensor | null>;
  holder[field]?.dispose();
  holder[field] = tf.tidy(() => tf.variable(tf.tensor(data, shape, "float32"), false));
}

export function planRecurrent(b: RecurrentBuilder, n: OnnxNode): void {
  const where = `loadOnnx: ${n.opType} ${n.name}`;
  const attr = (name: string) => n.attrs[name];
  const refuse = (what: string, fix: string) => {
    throw errors.unsupported(where, what, fix);
  };
  const hidden = Number(attr("hidden_size"));
  const direction = String(attr("direction") ?? "forward");
  if (!Number.isInteger(hidden) || hidden <= 0)
    refuse(`hidden_size ${String(attr("hidden_size"))}`, "export the layer with torch.onnx.export, which writes it");
  if (!["forward", "reverse", "bidirectional"].includes(direction))
    refuse(`direction '${direction}'`, "use forward, reverse or bidirectional");
  if (Number(attr("layout") ?? 0) !== 0)
    refuse("layout 1 (batch-major X and Y)", "export with batch_first=False, or transpose around the layer");
  if (attr("clip") !== undefined && attr("clip") !== null)
    refuse("cell clipping (clip)", "train and export without clip");
  if (Number(attr("input_forget") ?? 0) !== 0)
    refuse("coupled input and forget gates (input_forget = 1)", "use a standard LSTM");
  if (n.opType === "GRU" && Number(attr("linear_before_reset") ?? 0) !== 1) {
    refuse(
      "GRU with linear_before_reset = 0",
      "export from PyTorch (nn.GRU writes linear_before_reset = 1) or Keras with reset_after=True",
    );
  }
  const acts = (attr("activations") as string[] | undefined) ?? DEFAULT_ACTIVATIONS[n.opType];
  const dirs = direction === "bidirectional" ? 2 : 1;
  const defaults = DEFAULT_ACTIVATIONS[n.opType];
  let cell: RecurrentCell = n.opType === "LSTM" ? "LSTM" : n.opType === "GRU" ? "GRU" : "RNN_TANH";
  for (let d = 0; d < dirs; d++) {
    const mine = acts.slice(d * defaults.length, (d + 1) * defaults.length);
    const relu = n.opType === "RNN" && mine[0]?.toLowerCase() === "relu";
    if (relu) cell = "RNN_RELU";
    if (!relu && mine.some((a, i) => a.toLowerCase() !== defaults[i].toLowerCase())) {
      refuse(
        `activations ${acts.join(", ")}`,
        `the layers compute ${defaults.join(", ")}${n.opType === "RNN" ? " (or Relu)" : ""}`,
      );
    }
  }
  if (n.inputs[7]) refuse("peephole weights (input P)", "export an LSTM without peepholes");
  const [w, r] = [1, 2].map((k) => b.staticValue(n.inputs[k] ?? ""));
  if (w === null || r === null || w.dtype !== "float32" || r.dtype !== "float32")
    refuse("weights W / R that are not constants", "export with the weights as initializers");
  const W = w as ConstValue;
  const R = r as ConstValue;
  const G = GATE_ORDER[n.opType].length;
  const inputSize = W.dims[2];
  if (W.dims[0] !== dirs || W.dims[1] !== G * hidden || R.dims[2] !== hidden) {
    throw errors.shapeMismatch(
      where,
      `W [${W.dims}] and R [${R.dims}]`,
      `[${dirs}, ${G * hidden}, input] and [${dirs}, ${G * hidden}, ${hidden}]`,
    );
  }
  const B = n.inputs[3] ? b.staticValue(n.inputs[3]) : null;
  if (n.inputs[3] && B === null) refuse("a bias B that is not a constant", "export with the bias as an initializer");
  const m = new Recurrent(cell, inputSize, hidden, {
    bidirectional: dirs === 2,
    reverse: direction === "reverse",
    bias: true,
  });
  const order = GATE_ORDER[n.opType];
  [m.l0, m.l0_reverse].forEach((dir, d) => {
    if (dir === null) return;
    const gh = G * hidden;
    const set = (layer: Module, weight: Float32Array, k: number, bias: Float32Array) => {
      setParam(layer, "weight", weight, [gh, k]);
      setParam(layer, "bias", bias, [gh]);
    };
    const bias = (half: 0 | 1) =>
      B === null ? new Float32Array(gh) : reorder(B.data as Float32Array, d * 2 * gh + half * gh, order, hidden, 1);
    set(dir.ih, reorder(W.data as Float32Array, d * gh * inputSize, order, hidden, inputSize), inputSize, bias(0));
    set(dir.hh, reorder(R.data as Float32Array, d * gh * hidden, order, hidden, hidden), hidden, bias(1));
  });
  const path = b.layerPath(n);
  b.addLayer(path, m);
  const [x, seqLens, h0, c0] = [
    n.inputs[0],
    n.inputs[4] ?? "",
    n.inputs[5] ?? "",
    n.opType === "LSTM" ? (n.inputs[6] ?? "") : "",
  ];
  const lens = seqLens === "" ? null : b.staticValue(seqLens);
  if (seqLens !== "" && lens === null)
    refuse(
      "sequence_lens that depend on the input",
      "pad every sequence to the same length and export without sequence_lens",
    );
  b.steps.push({
    node: n.name,
    inputs: [x, h0, c0],
    outputs: n.outputs,
    run(root, ins, _allConst, constInputs = []) {
      const layer = root.moduleAt(path) as Recurrent | undefined;
      if (layer === undefined)
        throw errors.invalidArgument(
          where,
          `no layer at '${path}'`,
          "do not remove the recurrent layer with a transform",
        );
      const X = ins[0] as tf.Tensor;
      if (lens !== null && Array.from(lens.data).some((v) => v !== X.shape[0])) {
        refuse(
          `sequence_lens [${Array.from(lens.data)}] shorter than the sequence (${X.shape[0]})`,
          "pad every sequence to the same length and export without sequence_lens",
        );
      }
      // constant initial states (torch writes zeros when none are given): all zeros are the layer's own, others quantized by it
      const zero = (k: number) =>
        constInputs[k] === true &&
        ins[k] !== undefined &&
        tf.tidy(() => tf.max(tf.abs(ins[k] as tf.Tensor)).dataSync()[0]) === 0;
      const given = [1, 2].map((k) => (ins[k] === undefined || zero(k) ? null : (ins[k] as tf.Tensor)));
      const constant = [1, 2].some((k) => given[k - 1] !== null && constInputs[k] === true);
      if (constant && given.some((s, i) => s !== null && constInputs[i + 1] !== true)) {
        refuse("one initial state a constant and the other an input", "give both h0 and c0 as inputs, or neither");
      }
      const r = layer.forward(X, given[0], given[1], constant) as [tf.Tensor, tf.Tensor | [tf.Tensor, tf.Tensor]];
      const [output, states] = r;
      const [hN, cN] = Array.isArray(states) ? states : [states, null];
      // Y [T, dirs, B, H] from the output [T, B, dirs·H]
      const [T, Bn] = X.shape;
      const y4 = tf.reshape(output, [T, Bn, dirs, hidden]);
      const Y =
        dirs === 1 ? tf.reshape(y4, [T, 1, Bn, hidden]) : F.transpose(y4, [0, 2, 1, 3], { name: "sequence_output" });
      const outs: tf.Tensor[] = [Y, hN];
      if (cN) outs.push(cN);
      return outs;
    },
  });
}
