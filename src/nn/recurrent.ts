/**
 * Recurrent layers (PyTorch's nn.LSTM, nn.GRU, nn.RNN, one layer) as compositions of registry
 * ops, unrolled over the sequence: the input projection of every step at once (a Linear), then
 * per step the recurrent projection (a Linear), the gate sums (Add), the gate activations
 * (Sigmoid / Tanh look-up tables) and the state updates (Mul, Add, Sub). Every one of those is a
 * quantization point of its own, named after its role, so a sensitivity table says which gate of
 * which step hurts:
 *
 *   lstm.l0.ih (weight, output)        x W_ih^T + b_ih for all steps (l0_reverse: the reverse direction)
 *   lstm.l0.hh, lstm.l0.hh_1, …        h_{t-1} W_hh^T + b_hh, one per step
 *   lstm.gates, lstm.gates_1, …        their sum (the reverse direction's ops end in `_reverse`)
 *   lstm.input_gate / forget_gate / output_gate (Sigmoid), lstm.cell_gate (Tanh)
 *   lstm.cell                          c_t = f·c_{t-1} + i·g (the carried state)
 *   lstm.hidden                        h_t = o·tanh(c_t)
 *
 * Per-gate choices: every op follows the qconfig setter like any other op. The carried state
 * (`cell`, `hidden`) is what accumulates error over steps: the first candidates for int16 when the
 * sensitivity table puts them on top (`ModuleNameQconfigSetter({ "lstm.cell": int16 })` names all
 * steps' cell ops by the module path and op name).
 *
 * ```ts
 * const lstm = new qb.nn.LSTM(40, 64, { bidirectional: true });
 * const [y, [h, c]] = lstm.forward(x);   // x [T, B, 40] → y [T, B, 128], h, c [2, B, 64]
 * ```
 */
import * as tf from "@tensorflow/tfjs";
import { errors } from "../messages";
import { declareConstant } from "./forwardContext";
import * as F from "./functional";
import { QuantStub } from "./layers";
import { Linear } from "./linear";
import { Module } from "./module";

export type RecurrentCell = "LSTM" | "GRU" | "RNN_TANH" | "RNN_RELU";

export interface RecurrentOptions {
  bias?: boolean;
  bidirectional?: boolean;
  /** Input and output as [B, T, features] (default [T, B, features]). */
  batchFirst?: boolean;
  /** One direction that runs from the last step to the first (ONNX's direction "reverse"). */
  reverse?: boolean;
}

const GATES: Record<RecurrentCell, number> = { LSTM: 4, GRU: 3, RNN_TANH: 1, RNN_RELU: 1 };

/** One direction's projections: `ih` (input, all steps at once) and `hh` (recurrent, per step). */
class Direction extends Module {
  readonly ih: Linear;
  readonly hh: Linear;
  constructor(inputSize: number, hiddenSize: number, gates: number, bias: boolean) {
    super();
    this.ih = new Linear(inputSize, gates * hiddenSize, { bias });
    this.hh = new Linear(hiddenSize, gates * hiddenSize, { bias });
  }
  forward(x: tf.Tensor): tf.Tensor {
    return this.ih.forward(x);
  }
}

/** The shared unrolling of LSTM, GRU and RNN (one layer, one or two directions). */
export class Recurrent extends Module {
  readonly cell: RecurrentCell;
  readonly inputSize: number;
  readonly hiddenSize: number;
  readonly bidirectional: boolean;
  readonly batchFirst: boolean;
  readonly reverse: boolean;
  /** Forward direction, and (bidirectional) the reverse one, as PyTorch names their weights' suffix. */
  readonly l0: Direction;
  readonly l0_reverse: Direction | null;
  /** Quantizes initial states that are constants (zeros when none are given), as a graph input's stub would. */
  readonly state_quant = new QuantStub();

  constructor(cell: RecurrentCell, inputSize: number, hiddenSize: number, opts: RecurrentOptions = {}) {
    super();
    for (const [name, v] of [
      ["inputSize", inputSize],
      ["hiddenSize", hiddenSize],
    ] as const) {
      if (!Number.isInteger(v) || v <= 0)
        throw errors.invalidArgument(`nn.${cell}`, `${name} ${v}`, `pass a positive whole number`);
    }
    this.cell = cell;
    this.inputSize = inputSize;
    this.hiddenSize = hiddenSize;
    this.bidirectional = opts.bidirectional ?? false;
    this.batchFirst = opts.batchFirst ?? false;
    this.reverse = !this.bidirectional && (opts.reverse ?? false);
    const bias = opts.bias ?? true;
    this.l0 = new Direction(inputSize, hiddenSize, GATES[cell], bias);
    this.l0_reverse = this.bidirectional ? new Direction(inputSize, hiddenSize, GATES[cell], bias) : null;
  }

  get directions(): number {
    return this.bidirectional ? 2 : 1;
  }

  /**
   * `x` [T, B, inputSize] ([B, T, …] with batchFirst); `h0` (and for LSTM `c0`) [directions, B, hiddenSize], zeros when absent.
   * Returns the output [T, B, directions·hiddenSize] and the last states [directions, B, hiddenSize].
   */
  run(
    x: tf.Tensor,
    h0?: tf.Tensor | null,
    c0?: tf.Tensor | null,
    constantStates = false,
  ): { output: tf.Tensor; h: tf.Tensor; c: tf.Tensor | null; steps: tf.Tensor[][] } {
    const where = `nn.${this.cell.startsWith("RNN") ? "RNN" : this.cell}`;
    if (x.rank !== 3 || x.shape[2] !== this.inputSize) {
      throw errors.shapeMismatch(
        where,
        `input [${x.shape}]`,
        `[T, B, ${this.inputSize}]${this.batchFirst ? " (batchFirst: [B, T, …])" : ""}`,
      );
    }
    const seq = this.batchFirst ? F.transpose(x, [1, 0, 2], { name: "to_time_major" }) : x;
    const [T, B] = seq.shape;
    const H = this.hiddenSize;
    const dirs = this.directions;
    for (const [name, s] of [
      ["h0", h0],
      ["c0", c0],
    ] as const) {
      if (s && (s.rank !== 3 || s.shape[0] !== dirs || s.shape[1] !== B || s.shape[2] !== H))
        throw errors.shapeMismatch(where, `${name} [${s.shape}]`, `[${dirs}, ${B}, ${H}]`);
    }
    const initial = (s: tf.Tensor | null | undefined, d: number): tf.Tensor => {
      if (s) {
        const state = constantStates ? this.state_quant.forward(s) : s;
        return tf.reshape(F.slice(state, [d], [d + 1], [0], [1], { name: "initial_state" }), [B, H]);
      }
      // zeros: a constant of the model for this batch size, quantized like an input
      const z = tf.zeros([B, H]);
      declareConstant(z);
      return this.state_quant.forward(z);
    };
    const outs: tf.Tensor[][] = [];
    const lastH: tf.Tensor[] = [];
    const lastC: tf.Tensor[] = [];
    [this.l0, this.l0_reverse].forEach((dir, d) => {
      if (dir === null) return;
      const gi = dir.forward(seq);
      let h = initial(h0, d);
      let c = this.cell === "LSTM" ? initial(c0, d) : null;
      const ys: tf.Tensor[] = new Array(T);
      const named = (role: string) => ({ name: d === 0 ? role : `${role}_reverse` });
      for (let k = 0; k < T; k++) {
        const t = d === 0 && !this.reverse ? k : T - 1 - k;
        const xi = tf.reshape(F.slice(gi, [t], [t + 1], [0], [1], named("step")), [B, GATES[this.cell] * H]);
        const hh = dir.hh.forward(h);
        if (this.cell === "LSTM") {
          const [i, f, g, o] = F.split(F.add(xi, hh, named("gates")), H, 1, named("gate"));
          const ig = F.sigmoid(i, named("input_gate"));
          const fg = F.sigmoid(f, named("forget_gate"));
          const cg = F.tanh(g, named("cell_gate"));
          const og = F.sigmoid(o, named("output_gate"));
          c = F.add(F.mul(fg, c as tf.Tensor, named("forget")), F.mul(ig, cg, named("input")), named("cell"));
          h = F.mul(og, F.tanh(c, named("cell_tanh")), named("hidden"));
        } else if (this.cell === "GRU") {
          const [ir, iz, inn] = F.split(xi, H, 1, named("input_gate_part"));
          const [hr, hz, hn] = F.split(hh, H, 1, named("hidden_gate_part"));
          const r = F.sigmoid(F.add(ir, hr, named("reset_sum")), named("reset_gate"));
          const z = F.sigmoid(F.add(iz, hz, named("update_sum")), named("update_gate"));
          const n = F.tanh(F.add(inn, F.mul(r, hn, named("reset_hidden")), named("new_sum")), named("new_gate"));
          // h' = (1 − z)·n + z·h = n + z·(h − n)
          h = F.add(n, F.mul(z, F.sub(h, n, named("hidden_delta")), named("update")), named("hidden"));
        } else {
          const s = F.add(xi, hh, named("gates"));
          h = this.cell === "RNN_TANH" ? F.tanh(s, named("hidden")) : F.relu(s, named("hidden"));
        }
        ys[t] = h;
      }
      outs.push(ys);
      lastH.push(h);
      if (c) lastC.push(c);
    });
    // output [T, B, dirs·H]: the directions side by side, steps stacked
    const perStep = Array.from({ length: T }, (_, t) =>
      dirs === 1 ? outs[0][t] : F.concat([outs[0][t], outs[1][t]], 1, { name: "directions" }),
    );
    let output = F.concat(
      perStep.map((y) => tf.reshape(y, [1, B, dirs * H])),
      0,
      { name: "output" },
    );
    if (this.batchFirst) output = F.transpose(output, [1, 0, 2], { name: "to_batch_major" });
    const stack = (xs: tf.Tensor[], name: string) =>
      xs.length === 1
        ? tf.reshape(xs[0], [1, B, H])
        : F.concat(
            xs.map((v) => tf.reshape(v, [1, B, H])),
            0,
            { name },
          );
    return { output, h: stack(lastH, "last_hidden"), c: lastC.length ? stack(lastC, "last_cell") : null, steps: outs };
  }

  /** `constantStates`: h0 / c0 are constants of the model (not activations), quantized by `state_quant`. */
  forward(x: tf.Tensor, h0?: tf.Tensor | null, c0?: tf.Tensor | null, constantStates = false): unknown {
    const r = this.run(x, h0, c0, constantStates);
    return this.cell === "LSTM" ? [r.output, [r.h, r.c]] : [r.output, r.h];
  }
}

/** torch.nn.LSTM (one layer): `forward(x, h0?, c0?)` → `[output, [h_n, c_n]]`. */
export class LSTM extends Recurrent {
  constructor(inputSize: number, hiddenSize: number, opts: RecurrentOptions = {}) {
    super("LSTM", inputSize, hiddenSize, opts);
  }
}

/** torch.nn.GRU (one layer): `forward(x, h0?)` → `[output, h_n]`. */
export class GRU extends Recurrent {
  constructor(inputSize: number, hiddenSize: number, opts: RecurrentOptions = {}) {
    super("GRU", inputSize, hiddenSize, opts);
  }
}

/** torch.nn.RNN (one layer, tanh or relu): `forward(x, h0?)` → `[output, h_n]`. */
export class RNN extends Recurrent {
  constructor(inputSize: number, hiddenSize: number, opts: RecurrentOptions & { nonlinearity?: "tanh" | "relu" } = {}) {
    super(opts.nonlinearity === "relu" ? "RNN_RELU" : "RNN_TANH", inputSize, hiddenSize, opts);
  }
}
