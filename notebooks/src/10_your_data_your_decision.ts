// %% [markdown]
// # 10 · Your data in, your decision out
//
// The earlier notebooks calibrated on random tensors and kept their conclusions inside quantbook.
// A deployment works the other way round: the calibration set is a folder of real images, the
// question is whether the quantized model still agrees with the float one on them, and the answer
// must go to the toolchain that builds the model for the chip. This notebook walks that loop on a
// small CNN imported from ONNX (a MobileNetV2 exported by PyTorch, 32×32 input) and a folder of
// images of shapes on textured backgrounds, one sub-folder per class.

// %%
import * as tf from "@tensorflow/tfjs";
import * as qb from "quantbook";

qb.setMarch(qb.March.NASH_M);
const model = await qb.io.loadOnnx(qb.examples.fixturePath("onnx/mobilenet_v2_opset13.onnx"));
// the deployment config's preprocessing: resize to the model's input, RGB, (pixel − mean) · scale, NCHW
const images = qb.data.imageFolder(qb.examples.fixturePath("images/calib"), {
  batchSize: 4,
  image: { resize: [32, 32], mean: [123.675, 116.28, 103.53], scale: [1 / 58.395, 1 / 57.12, 1 / 57.375] },
});
console.log(`${images.samples} images in ${images.length} batches, classes ${images.classes?.join(", ")}`);
const batches = (await images.take()).map(([b]) => b);
console.log(`one batch: [${batches[0].shape}]`);

// %% [markdown]
// ## Which calibration method?
//
// The reference toolchain offers `max`, `max` with a percentile, `kl` (entropy) and a `default`
// that searches among them. `qb.analysis.chooseCalibration` calibrates the model with each, measures the
// output against float on the same images, and keeps the best. The table says by how much the
// winner wins; on a small, well-behaved network the methods are close, and on one with outliers
// (a detector's box regression, an attention softmax) they are not.

// %%
const choice = await qb.analysis.chooseCalibration(model, batches);
console.log(`chosen: ${choice.chosen}`);
choice;

// %% [markdown]
// ## Is the quantized model still right?
//
// `qb.analysis.evaluate` compares the calibrated model with its own float run over the dataset: per output
// the cosine similarity (the deployment guidance is ≥ 0.99 for classification), MSE, the largest
// error and SQNR; for a classifier, how often the quantized top-1 class is the float one.

// %%
const calib = qb.prepare(model.eval(), batches[0], { qconfigSetter: [choice.setter] });
qb.setFakeQuantize(calib, qb.FakeQuantState.CALIBRATION);
await qb.calibrate(calib, images);
qb.setFakeQuantize(calib, qb.FakeQuantState.VALIDATION);
const ev = await qb.analysis.evaluate(calib, images, { task: "classification" });
console.log(`cosine ${ev.rows[0].cosine.toFixed(6)}, top-1 agreement ${(100 * (ev.top1 ?? 0)).toFixed(1)}%`);
ev;

// %% [markdown]
// ## Where does the error come from?
//
// The cumulative-error curve switches quantization on op by op, in execution order. A curve that
// climbs evenly says error accumulates over many ops; a step says one op breaks the output — that
// op is where to spend int16.

// %%
const qa = new qb.analysis.QuantAnalysis(model, calib);
const curve = qa.cumulativeError({ data: batches[0] });
console.log(curve.caption);
curve.plot();

// %% [markdown]
// ## Let the planner decide, then hand the decision over
//
// The planner (notebook 08) proposes which points to raise to int16 within the chip's rules. Its
// error can be the task's own: ranked by top-1 agreement, it asks how many images change class.
// Here the answer is none, already at int8 — so there is nothing for it to buy, and it says so.

// %%
const byTop1 = await qb.analysis.planMixedPrecision(model, batches.slice(0, 2), {
  march: qb.March.NASH_M,
  evaluations: 2,
  metric: "Top1",
});
console.log(byTop1.caption);

// %% [markdown]
// A finer measure still sees the error the classes hide. Ranked by the mean output error, the most
// accurate plan on the front becomes the configuration to deploy.

// %%
const plan = await qb.analysis.planMixedPrecision(model, batches.slice(0, 1), {
  march: qb.March.NASH_M,
  evaluations: 4,
});
const best = plan.pick({ latencyMs: Math.max(...plan.rows.map((r) => r.latency_ms)) });
console.log(`front: ${plan.rows.length} plans; deploying point ${best}: ${plan.rows[best].choices}`);
const { qconfigSetter, apply } = plan.setter(best);
const chosen = qb.prepare(apply(model).eval(), batches[0], { qconfigSetter });
qb.setFakeQuantize(chosen, qb.FakeQuantState.CALIBRATION);
await qb.calibrate(chosen, images);
qb.setFakeQuantize(chosen, qb.FakeQuantState.VALIDATION);
plan;

// %% [markdown]
// Three ways out. **The PTQ config**: `node_info` names the ONNX file's own nodes (not quantbook's
// module paths), so the toolchain can read it as it is; `input_parameters` come from the image
// folder's preprocessing (channel order, layout, mean and scale), so the chip normalises as the
// calibration did.

// %%
console.log(qb.deploy.ptqYaml(chosen, { onnxModel: "mobilenet_v2_opset13.onnx", data: images }));

// %% [markdown]
// **The plugin's qconfigs**, for a calibration or QAT script in PyTorch: only the module paths
// that differ from the base template are listed.

// %%
console.log(qb.deploy.pluginSnippet(chosen));

// %% [markdown]
// **A QDQ ONNX file**: your own ONNX file — its nodes and names untouched — with `QuantizeLinear` /
// `DequantizeLinear` pairs carrying quantbook's scales on every tensor quantbook quantizes, the
// interchange many compilers read. onnxruntime runs it; its output should
// sit within a quantization step of quantbook's own fake quantization (ONNX divides by the scale
// where quantbook multiplies by its inverse, so a near-tie can round the other way).

// %%
import * as ort from "onnxruntime-node";
const qdq = qb.deploy.qdqOnnx(chosen, batches[0]);
const session = await ort.InferenceSession.create(qdq);
// the file takes what it took before: one image of [1, 3, 32, 32]
const image = batches[0].slice(0, 1);
const ours = (chosen.forward(batches[0]) as unknown as tf.Tensor).slice(0, 1).dataSync();
const theirs = (
  await session.run({
    [session.inputNames[0]]: new ort.Tensor("float32", image.dataSync() as Float32Array, image.shape),
  })
)[session.outputNames[0]].data as Float32Array;
let worst = 0;
for (let i = 0; i < ours.length; i++) worst = Math.max(worst, Math.abs(ours[i] - theirs[i]));
console.log(
  `QDQ file: ${qdq.length} bytes; max |QDQ in onnxruntime − quantbook| = ${worst.toExponential(2)} (output range ${Math.max(...Array.from(ours, Math.abs)).toFixed(3)})`,
);
