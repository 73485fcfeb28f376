/**
 * The forward-pass runtime: which module is running (for op names such as
 * `layernorm.rsqrt`), and the interceptor a prepared model installs so that functional ops get
 * their fake-quantizers. `nn/` defines the interface; `workflow/` implements it.
 */
import type * as tf from "@tensorflow/tfjs";

/** One call of a quantization-aware op, as the interceptor sees it. */
export interface OpCall {
  /** Full name, e.g. "linear2", "layernorm.rsqrt", "mul_1". */
  name: string;
  /** Op type, e.g. "Linear", "Mul", "Sigmoid". */
  type: string;
  /** Path of the module whose forward called the op ("" for the root). */
  modulePath: string;
  /** Activation inputs (quantized by the producing op or an input fake-quantizer). */
  inputs: tf.Tensor[];
  /** A parameter quantized with the op's weight qconfig (Linear weight, LayerNorm gamma). */
  weight?: tf.Tensor | undefined;
  /** Parameters kept in high precision (biases). */
  params: tf.Tensor[];
  /** Multiply-accumulates (GEMMs) or element operations, for sensitivity tables. */
  flops: number;
  /** Op attributes an exporter needs (axes, scalar operands). */
  attrs: Record<string, unknown>;
}

export type Compute = (inputs: tf.Tensor[], weight: tf.Tensor | undefined, params: tf.Tensor[]) => tf.Tensor;

export interface OpInterceptor {
  /** Called with the root forward's arguments before it runs. */
  begin(args: unknown[], root: object): void;
  runOp(call: OpCall, compute: Compute): tf.Tensor;
  /** Called with the root forward's result. */
  end(result: unknown): void;
  /**
   * A float tensor the model computed from its own constants and its input's shape only (an
   * imported graph's folded subgraph, such as a class token expanded to the batch): a constant
   * for this input shape, not a raw op on activations.
   */
  constant?(t: tf.Tensor): void;
  /** The quantized ops of each module path (what a display of a prepared model counts). */
  opsPerModule?(): Map<string, number>;
}

/** Symbol under which a prepared root module keeps its interceptor. */
export const INTERCEPTOR = Symbol.for("quantbook.interceptor");
