// %% [markdown]
// # 01 · Find the op that loses the precision
//
// The model of this case: input `[2, 100, 256]` → `linear1` (256→256) → LayerNorm → ReLU →
// `linear2` (256→60) → `linear3` (60→60). Its float weights come from a PyTorch checkpoint
// (`torch.save` of a state dict; quantbook reads it without running any Python).
//
// Quantized with the usual J6 template (int8 weights, int16 activations), its output drifts
// further from float than the int16 activations would suggest. The question of this notebook:
// which op is responsible?

// %%
import * as tf from "@tensorflow/tfjs";
import * as qb from "quantbook";

await qb.backend.init();
qb.setMarch(qb.March.NASH_M);
const sd = (await qb.io.loadTorch(qb.examples.fixturePath("float-checkpoint.ckpt"))) as Record<string, tf.Tensor>;
const x = (await qb.io.loadTorch(qb.examples.fixturePath("random_data.pt"))) as tf.Tensor;
const model = new qb.examples.SmallModel();
const loaded = model.loadStateDict(sd);
console.log(`input [${x.shape}]; missing keys: [${loaded.missingKeys}], unexpected keys: [${loaded.unexpectedKeys}]`);

// %%
const floatOut = model.eval().forward(x);
const calib = qb.prepare(model, x, { qconfigSetter: [qb.qconfig.calibration8bitWeight16bitActQconfigSetter] });
qb.setFakeQuantize(calib, qb.FakeQuantState.CALIBRATION);
await qb.calibrate(calib, [x]);
qb.setFakeQuantize(calib, qb.FakeQuantState.VALIDATION);
const calibOut = calib.forward(x);
const [meanErr, maxErr] = tf.tidy(() => {
  const d = tf.abs(tf.sub(calibOut, floatOut));
  return [tf.mean(d).dataSync()[0], tf.max(d).dataSync()[0]];
});
console.log(`float vs calibrated: mean |diff| ${meanErr.toExponential(3)}, max |diff| ${maxErr.toExponential(3)}`);

// %% [markdown]
// ## Sensitivity
//
// The debug tool's method is simple: start from the float model, switch on the quantization of
// **one** point — an op's output ("activation") or an op's weight — run the whole model, and
// measure how far the output moves (L1 by default). Repeat for every point and sort, worst
// first. Ops before the one under test compute exactly what they computed in float, so their
// float outputs are reused instead of recomputed.

// %%
const qa = new qb.analysis.QuantAnalysis(model, calib);
const sensitivity = qa.sensitivity({ data: x });
const rank = sensitivity.rows.findIndex((r) => r.op_name === "linear2" && r.sensitive_type === "weight") + 1;
console.log(`linear2 weight rank: ${rank} of ${sensitivity.rows.length}`);
sensitivity;

// %%
qb.plots.sensitivityBars(sensitivity.rows, { topk: 10 });

// %% [markdown]
// `linear2`'s weight, quantized to int8, dominates the error. The statistics table says why: per op
// and attribute (input, weight, bias, output) it lists the range and the moments of the values,
// in the float model ("baseline") and in the quantized one.

// %%
const stats = qa.statistics({ data: x });
stats.baseline.rows.filter((r) => r["Mod Name"] === "linear2");

// %% [markdown]
// The weight's variance is small (about 0.44) but its extremes reach −41.7 and 31.2. With one
// int8 scale per output row, a row's step is its largest |value| / 127.5: every row holds an
// outlier several times larger than the bulk of its values, so most weights are represented by
// only a handful of integer levels. On a log-count histogram the outliers stand apart:

// %%
qb.plots.histogram(model.linear2.weight, {
  bins: 80,
  logCount: true,
  title: "linear2.weight (log count)",
  xTitle: "weight value",
});
