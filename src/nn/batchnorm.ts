import * as tf from "@tensorflow/tfjs";
import { constantParameter } from "./init";
import { Module } from "./module";
import { runOp } from "./op";
import { errors } from "../messages";

/**
 * BatchNorm over the channels of NCHW tensors with PyTorch's parameters and buffers (`weight`,
 * `bias`, `running_mean`, `running_var`, `num_batches_tracked`), so checkpoints load as they are.
 * It always normalises with the running statistics (inference semantics; quantbook does not
 * update them). Deploy flows fold it into the convolution before it:
 * `qb.transforms.fuseConvBn(model, [["conv1", "bn1"]])`.
 */
export class BatchNorm2d extends Module {
  weight: tf.Variable;
  bias: tf.Variable;
  running_mean: tf.Variable;
  running_var: tf.Variable;
  num_batches_tracked: tf.Variable;

  constructor(
    readonly numFeatures: number,
    readonly eps = 1e-5,
  ) {
    super();
    this.weight = constantParameter([numFeatures], 1);
    this.bias = constantParameter([numFeatures], 0);
    this.running_mean = tf.variable(tf.zeros([numFeatures]), false);
    this.running_var = tf.variable(tf.ones([numFeatures]), false);
    this.num_batches_tracked = tf.variable(tf.scalar(0, "int32"), false);
  }

  /** Per-channel scale and shift: y = x · scale + shift. */
  affine(): { scale: tf.Tensor1D; shift: tf.Tensor1D } {
    return tf.tidy(() => {
      const scale = tf.div(this.weight, tf.sqrt(tf.add(this.running_var, this.eps))) as tf.Tensor1D;
      return { scale, shift: tf.sub(this.bias, tf.mul(this.running_mean, scale)) as tf.Tensor1D };
    }) as unknown as { scale: tf.Tensor1D; shift: tf.Tensor1D };
  }

  forward(x: tf.Tensor): tf.Tensor {
    if (x.rank !== 4 || x.shape[1] !== this.numFeatures) {
      throw errors.shapeMismatch("BatchNorm2d", `input shape [${x.shape}]`, `NCHW with ${this.numFeatures} channels`);
    }
    const { scale, shift } = this.affine();
    return runOp({ type: "BatchNorm", name: null, fallback: "batchnorm", params: [scale, shift] }, [x]);
  }
}

/** Passes its input through; what a fused BatchNorm becomes. */
export class Identity extends Module {
  forward(x: tf.Tensor): tf.Tensor {
    return x;
  }
}
