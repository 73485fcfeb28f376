// %% [markdown]
// # 04 · The mul-output scale trap
//
// In the mul + sum form, the product tensor is quantized before it is summed. Its scale comes
// from calibration, by default from the MSE observer: it tries ranges shrunk from the observed
// min/max and keeps the one with the lowest squared error.
//
// That choice goes wrong when **most** products are close to zero and **a few** are huge. Clipping
// one huge product costs a large squared error, while rounding many tiny products to zero costs
// little each, so MSE keeps the range wide. The step becomes larger than the tiny products, they
// round to 0, and the sum — which is built from exactly those many small terms — loses its value.
// It hurts most when a sigmoid follows (directly, or after an add), as in a gate.
//
// `qb.examples.GatedMulSum` is such a gate: `x [2, 64, 256]` × `w [16, 256]` → mul → sum → add →
// sigmoid, with small weights except a few large ones that meet a few large inputs.

// %%
import * as tf from "@tensorflow/tfjs";
import * as qb from "quantbook";

await qb.backend.init();
qb.setMarch(qb.March.NASH_M);
const demo = qb.examples.GatedMulSum.demo();
const model = demo.model;
const data = demo.data;
model.eval();
const floatOut = model.forward(data);

const calib = qb.prepare(model, data, { qconfigSetter: [qb.qconfig.calibration8bitWeight16bitActQconfigSetter] });
qb.setFakeQuantize(calib, qb.FakeQuantState.CALIBRATION);
await qb.calibrate(calib, [data]);
qb.setFakeQuantize(calib, qb.FakeQuantState.VALIDATION);
const mulOp = qb.analysis.preparedOps(calib).find((o) => o.info.name === "gate_mul")!;
const mseScale = mulOp.output!.scale()![0];
const l1 = (out: tf.Tensor) => tf.tidy(() => tf.mean(tf.abs(tf.sub(out, floatOut))).dataSync()[0]);
console.log(
  `MSE-calibrated scale of gate_mul: ${mseScale.toExponential(3)}; gate output mean |quantized - float| = ${l1(calib.forward(data)).toExponential(3)}`,
);

// %% [markdown]
// The distribution of |product| on a log axis, with the band that rounds to zero at that scale
// shaded. Almost all of the mass sits inside it.

// %%
const products = tf.tidy(() => tf.mul(tf.reshape(data, [2, 64, 1, 256]), tf.reshape(model.weight, [1, 1, 16, 256])));
qb.plots.zeroBandHistogram(products, mseScale);

// %% [markdown]
// ## Scale explorer
//
// For one op, try several output scales — from the observers, a fixed value, or a sweep — and
// measure for each: the fraction of values rounded to zero, the fraction clipped, the op's own
// error and the error of the model output (everything else quantized as calibrated).
//
// The fixed scale 7/32767 (int16) comes from the gate: a sigmoid is flat beyond |x| ≈ 7, so
// nothing is lost by clipping the sum's terms there, while the step (≈ 2.1e-4) stays small enough
// for the small products.

// %%
const sweep = Array.from({ length: 26 }, (_, k) => 10 ** (-4 + 0.1 * k)); // 1e-4 … 3.2e-2, ten per decade
const explored = qb.analysis.scaleExplorer(calib, "gate_mul", { data, sweep });
explored.filter((r) => !r.setting.startsWith("sweep"));

// %% [markdown]
// The whole sweep as a chart. In the HTML report (`quantbook report`) and in JupyterLab the
// slider moves the scale: the ring marks the explored scale nearest to it, the line above the
// charts gives its numbers, and the shaded band in the bottom panel — the products that round
// to zero — grows as the scale grows. Slide from the left end towards the MSE scale and watch
// the zero fraction climb while the output error climbs with it.

// %%
qb.plots.scaleSweepChart(explored, { values: products });

// %% [markdown]
// The fix in the qconfig: give the mul output the fixed scale, ahead of the template.

// %%
const fixed = qb.prepare(model, data, {
  qconfigSetter: [
    qb.qconfig.FixedScaleQconfigSetter({ gate_mul: 7 / 32767 }),
    qb.qconfig.calibration8bitWeight16bitActQconfigSetter,
  ],
});
qb.setFakeQuantize(fixed, qb.FakeQuantState.CALIBRATION);
await qb.calibrate(fixed, [data]);
qb.setFakeQuantize(fixed, qb.FakeQuantState.VALIDATION);
const mseRow = explored.find((r) => r.setting === "MSEObserver")!;
const fixedRow = explored.find((r) => r.setting === "fixed 7/32767")!;
console.log(
  `rounded to zero: MSE ${(100 * mseRow.zero_fraction).toFixed(1)}%, fixed 7/32767 ${(100 * fixedRow.zero_fraction).toFixed(1)}%`,
);
console.log(
  `gate output mean |quantized - float|: MSE ${l1(calib.forward(data)).toExponential(3)}, fixed 7/32767 ${l1(fixed.forward(data)).toExponential(3)}`,
);

// %% [markdown]
// ## And in the article's model?
//
// The same explorer on `linear2.mul` of the rewritten article model gives the opposite answer.
// No sigmoid follows this mul, and its products reach a few hundred because of the weight
// outliers found in notebook 01: they carry signal. MSE keeps them and rounds almost nothing to
// zero, while the fixed 7/32767 would clip them and multiply the output error. A fixed scale is a
// fix for products feeding a saturating function, not a rule for every mul — which is why it
// pays to look at the op before forcing one.

// %%
const sd = (await qb.io.loadTorch(qb.examples.fixturePath("float-checkpoint.ckpt"))) as Record<string, tf.Tensor>;
const x = (await qb.io.loadTorch(qb.examples.fixturePath("random_data.pt"))) as tf.Tensor;
const article = qb.transforms.replaceLinearWithBroadcastMulSum(new qb.examples.SmallModel(), "linear2");
article.loadStateDict(sd);
const articleCalib = qb.prepare(article.eval(), x, {
  qconfigSetter: [qb.qconfig.calibration8bitWeight16bitActQconfigSetter],
});
qb.setFakeQuantize(articleCalib, qb.FakeQuantState.CALIBRATION);
await qb.calibrate(articleCalib, [x]);
qb.setFakeQuantize(articleCalib, qb.FakeQuantState.VALIDATION);
qb.analysis.scaleExplorer(articleCalib, "linear2.mul", { data: x });
