/** BatchNorm with inference statistics, as a per-channel scale and shift (params [scale, shift]). */
import * as tf from "@tensorflow/tfjs";
import { batchNorm } from "./int/kernels";
import { defineOp } from "./registry";

defineOp({
  type: "BatchNorm",
  doc: "x · scale[c] + shift[c] over the channels of NCHW input (an unfused BatchNorm2d)",
  role: "compute",
  unit: "vector",
  compute: ([t], _w, [s, b]) => {
    const c = t.shape[1] as number;
    return tf.add(tf.mul(t, tf.reshape(s, [1, c, 1, 1])), tf.reshape(b, [1, c, 1, 1]));
  },
  onnx: ({ b, inputs: [x], inputShapes: [xs], params: [s, t] }) => {
    const ch = [1, xs[1], 1, 1];
    return b.op("Add", [b.op("Mul", [x, b.reshape(s, ch)]), b.reshape(t, ch)]);
  },
  integer:
    (node) =>
    ([x]) =>
      batchNorm(node, x),
});
