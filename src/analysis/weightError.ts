/** How much a weight loses at each quantization scheme, per output channel (what the rewrite trades). */
import * as tf from "@tensorflow/tfjs";
import { fakeQuantize } from "../quant/fakeQuantize";
import { qint16, qint8 } from "../quant/dtypes";
import { scaleFromRange } from "../quant/scale";

export interface WeightErrorRow {
  channel: number;
  scheme: "int8 per channel" | "int16 per tensor";
  rmse: number;
}

/**
 * Per output channel (axis 0) of a [out, in] weight: the RMS error of the weight quantized int8
 * per channel and int16 per tensor. `qb.plots.weightQuantErrorChart(rows)` draws it.
 */
export function weightQuantError(weight: tf.Tensor2D): WeightErrorRow[] {
  const out: WeightErrorRow[] = [];
  tf.tidy(() => {
    const absMax = tf.max(tf.abs(weight), 1).dataSync();
    const s8 = Array.from(absMax, (m) => scaleFromRange(-m, m, qint8));
    const all = tf.max(tf.abs(weight)).dataSync()[0];
    const q8 = fakeQuantize(weight, { scale: s8, dtype: qint8, axis: 0 });
    const q16 = fakeQuantize(weight, { scale: scaleFromRange(-all, all, qint16), dtype: qint16 });
    const e8 = tf.sqrt(tf.mean(tf.squaredDifference(q8, weight), 1)).dataSync();
    const e16 = tf.sqrt(tf.mean(tf.squaredDifference(q16, weight), 1)).dataSync();
    e8.forEach((v, c) =>
      out.push(
        { channel: c, scheme: "int8 per channel", rmse: v },
        { channel: c, scheme: "int16 per tensor", rmse: e16[c] },
      ),
    );
  });
  return out;
}
