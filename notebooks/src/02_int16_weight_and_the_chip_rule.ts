// %% [markdown]
// # 02 · An int16 weight, and the rule the chip sets
//
// Notebook 01 found `linear2`'s int8 weight to be the sensitive point. The natural fix is to
// quantize that weight in int16. This notebook measures what that buys, and then asks the chip
// whether it can run it.

// %%
import * as tf from "@tensorflow/tfjs";
import * as qb from "quantbook";

await qb.backend.init();
qb.setMarch(qb.March.NASH_M);
const sd = (await qb.io.loadTorch(qb.examples.fixturePath("float-checkpoint.ckpt"))) as Record<string, tf.Tensor>;
const x = (await qb.io.loadTorch(qb.examples.fixturePath("random_data.pt"))) as tf.Tensor;
const model = new qb.examples.SmallModel();
model.loadStateDict(sd);
const floatOut = model.eval().forward(x);

async function calibrated(setters: qb.qconfig.QconfigSetter[]) {
  const m = qb.prepare(model, x, { qconfigSetter: setters });
  qb.setFakeQuantize(m, qb.FakeQuantState.CALIBRATION);
  await qb.calibrate(m, [x]);
  qb.setFakeQuantize(m, qb.FakeQuantState.VALIDATION);
  return m;
}

function meanAbsDiff(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.mean(tf.abs(tf.sub(a, b))).dataSync()[0]);
}

// %% [markdown]
// How much finer is int16? Per output channel, the RMS error of the weight quantized int8 per
// channel (what a Linear gets) and int16 per tensor (one scale for the whole weight):

// %%
qb.plots.weightQuantErrorChart(qb.analysis.weightQuantError(model.linear2.weight as tf.Tensor2D));

// %% [markdown]
// Setters given to `prepare` apply in order and the earlier one wins, field by field. So a
// `ModuleNameQconfigSetter` placed before the template changes only `linear2`'s weight dtype and
// keeps everything else from the template.

// %%
const int8 = await calibrated([qb.qconfig.calibration8bitWeight16bitActQconfigSetter]);
const int16 = await calibrated([
  qb.qconfig.ModuleNameQconfigSetter({ linear2: qb.qconfig.getQconfig({ weightDtype: qb.qint16 }) }),
  qb.qconfig.calibration8bitWeight16bitActQconfigSetter,
]);
const e8 = meanAbsDiff(int8.forward(x), floatOut);
const e16 = meanAbsDiff(int16.forward(x), floatOut);
console.log(
  `mean |output - float|: linear2 weight int8 ${e8.toExponential(3)}, int16 ${e16.toExponential(3)} (${(e8 / e16).toFixed(1)}x smaller)`,
);

// %% [markdown]
// Precision recovered. But the template quantizes activations in int16, so `linear2` now takes
// an **int16 input with an int16 weight**. On J6E / J6M the BPU's Linear (and Conv, Matmul)
// accepts int8 or int16 on either side, but not int16 on both. quantbook keeps each chip's
// rules as data and reports every violation with its fixes:

// %%
qb.march.checkModel(int16, qb.March.NASH_M);

// %% [markdown]
// `convert`, which builds the integer model for the chip, refuses the model with the same
// message (and NASH_P, whose BPU allows the combination, accepts it):

// %%
const ir16 = qb.export(int16, x);
try {
  qb.convert(ir16, qb.March.NASH_M);
} catch (e) {
  console.log((e as Error).message);
}
console.log(`NASH_P: ${qb.march.checkModel(ir16, qb.March.NASH_P).ok ? "accepted" : "refused"}`);

// %% [markdown]
// The first fix the message offers keeps the int16 weight and re-quantizes the Linear's input to
// int8. That passes the rule, at a price in precision that the next notebooks weigh against the
// other way out: computing the Linear as a broadcast multiply and a sum.

// %%
const int8Input = await calibrated([
  qb.qconfig.ModuleNameQconfigSetter({ linear2: qb.qconfig.getQconfig({ inDtype: qb.qint8, weightDtype: qb.qint16 }) }),
  qb.qconfig.calibration8bitWeight16bitActQconfigSetter,
]);
const e8in = meanAbsDiff(int8Input.forward(x), floatOut);
console.log(
  `int8 input + int16 weight: rule ${qb.march.checkModel(int8Input, qb.March.NASH_M).ok ? "passes" : "fails"}, mean |output - float| ${e8in.toExponential(3)}`,
);
