// %% [markdown]
// # 08 · Let the planner choose
//
// Notebooks 01–05 reasoned one op at a time: linear2's int8 weight is the most sensitive point;
// int16 would fix it; NASH_M refuses int16 input together with int16 weight; so either lower the
// input, or rewrite the Linear as broadcast mul + sum and pay latency. `qb.analysis.planMixedPrecision` does
// that reasoning for every point at once. It measures each point's error at int8 and int16 (one
// sensitivity pass per dtype), estimates each plan's latency with `qb.march.perf`, sweeps the trade-off,
// repairs any GEMM the chip would refuse, measures the most promising plans for real, and returns
// the Pareto front of measured error against estimated latency. No plan it returns breaks a rule.

// %%
import * as tf from "@tensorflow/tfjs";
import * as qb from "quantbook";

await qb.backend.init();
qb.setMarch(qb.March.NASH_M);
const sd = (await qb.io.loadTorch(qb.examples.fixturePath("float-checkpoint.ckpt"))) as Record<string, tf.Tensor>;
const x = (await qb.io.loadTorch(qb.examples.fixturePath("random_data.pt"))) as tf.Tensor;
const model = new qb.examples.SmallModel();
model.loadStateDict(sd);
model.eval();
const plan = await qb.analysis.planMixedPrecision(model, [x], {
  march: qb.March.NASH_M,
  base: qb.qconfig.calibration8bitWeight16bitActQconfigSetter,
});
plan;

// %% [markdown]
// The chart puts the front next to Horizon-style top-k promotion (the worst k rows of the
// sensitivity table raised to int16). On NASH_M every top-k plan keeps int16 activations and
// raises linear2's weight to int16 — exactly the pair the chip refuses — so its latency is
// undefined: those points are listed, not drawn.

// %%
console.log(
  plan.topk
    .map(
      (t) =>
        `top-${t.k}: error ${t.measured_error.toExponential(3)}, ${t.legal ? `${t.latency_ms.toFixed(4)} ms` : "refused by NASH_M"}`,
    )
    .join("\n"),
);
plan.plot();

// %% [markdown]
// Pick a point by budget and reproduce it through the ordinary prepare → calibrate flow: the
// setter (and, when the plan rewrites a Linear, the transform) is all it takes.

// %%
const best = plan.pick({ latencyMs: plan.rows[plan.rows.length - 1].latency_ms });
const { qconfigSetter, apply, rewrites } = plan.setter(best);
const calib = qb.prepare(apply(model).eval(), x, { qconfigSetter });
qb.setFakeQuantize(calib, qb.FakeQuantState.CALIBRATION);
await qb.calibrate(calib, [x]);
qb.setFakeQuantize(calib, qb.FakeQuantState.VALIDATION);
const error = tf.tidy(
  () => tf.mean(tf.abs(tf.sub(calib.forward(x) as tf.Tensor, model.forward(x) as tf.Tensor))).dataSync()[0],
);
console.log(`point ${best}: ${plan.rows[best].choices}`);
console.log(
  `rewrites: ${rewrites.length ? rewrites.join(", ") : "none"}; reproduced error ${error.toExponential(3)} (planned ${plan.rows[best].measured_error.toExponential(3)}); NASH_M: ${qb.march.checkModel(calib, qb.March.NASH_M).ok ? "every op passes" : "violations"}`,
);

// %% [markdown]
// The same call on an imported network: the MobileNetV3-Small of notebook 07's fixtures, planned
// for NASH_M from an all-int8 start.

// %%
const mnet = await qb.io.loadOnnx(qb.examples.fixturePath("onnx/mobilenet_v3_opset13.onnx"));
const images = [1, 2].map((s) => tf.randomNormal([1, 3, 32, 32], 0, 1, "float32", s));
const mplan = await qb.analysis.planMixedPrecision(mnet, images, { march: qb.March.NASH_M });
mplan;
