// %% [markdown]
// # 03 · The Linear as a broadcast multiply and a sum
//
// A Linear computes `y[..., o] = Σ_i x[..., i] · W[o, i] + b[o]`. The same numbers come out of a
// broadcast multiply followed by a sum over the last axis:
//
// ```
// prod = x.reshape(2, 100, 1, 256) * W.reshape(1, 1, 60, 256)   // [2, 100, 60, 256]
// y    = prod.sum(-1) + b                                        // [2, 100, 60]
// ```
//
// On the BPU, `mul` and `sum` accept int16 on every input, so this form gets int16 input *and*
// int16 weight past the J6E/M rule. Two things change in quantization: the weight now enters
// through a QuantStub and is quantized **per tensor** like an activation (instead of per output
// channel), and the mul, sum and add outputs get fake-quantizers of their own.

// %%
import * as tf from "@tensorflow/tfjs";
import * as qb from "quantbook";

await qb.backend.init();
qb.setMarch(qb.March.NASH_M);
const sd = (await qb.io.loadTorch(qb.examples.fixturePath("float-checkpoint.ckpt"))) as Record<string, tf.Tensor>;
const x = (await qb.io.loadTorch(qb.examples.fixturePath("random_data.pt"))) as tf.Tensor;
const model = new qb.examples.SmallModel();
const loaded = model.loadStateDict(sd);

// %% [markdown]
// The rewrite needs no retraining: `replaceLinearWithBroadcastMulSum` returns a copy of the model
// whose `linear2` is the mul + sum form, with parameters under the same names, so the original
// checkpoint still loads into it.

// %%
const rewritten = qb.transforms.replaceLinearWithBroadcastMulSum(model, "linear2");
const res = rewritten.loadStateDict(sd);
const floatLinear = model.eval().forward(x);
const floatMulSum = rewritten.eval().forward(x);
const floatGap = tf.tidy(() => tf.max(tf.abs(tf.sub(floatLinear, floatMulSum))).dataSync()[0]);
console.log(
  `strict load: missing [${res.missingKeys}], unexpected [${res.unexpectedKeys}]; float max |Linear - mul+sum| = ${floatGap.toExponential(2)}`,
);

// %%
async function calibrated(m: qb.nn.Module, setters: qb.qconfig.QconfigSetter[]) {
  const c = qb.prepare(m, x, { qconfigSetter: setters });
  qb.setFakeQuantize(c, qb.FakeQuantState.CALIBRATION);
  await qb.calibrate(c, [x]);
  qb.setFakeQuantize(c, qb.FakeQuantState.VALIDATION);
  return c;
}
const mulSum = await calibrated(rewritten, [qb.qconfig.calibration8bitWeight16bitActQconfigSetter]);
const linear16 = await calibrated(model, [
  qb.qconfig.ModuleNameQconfigSetter({ linear2: qb.qconfig.getQconfig({ weightDtype: qb.qint16 }) }),
  qb.qconfig.calibration8bitWeight16bitActQconfigSetter,
]);
qb.analysis
  .preparedOps(mulSum)
  .filter((o) => o.info.modulePath === "linear2")
  .map((o) => ({ op: o.info.name, type: o.info.type, output: o.output?.dtype.name, scale: o.output?.scale()?.[0] }));

// %% [markdown]
// The chip rule is satisfied now: every op of the mul + sum form runs in int16 on NASH_M.

// %%
qb.march.checkModel(mulSum, qb.March.NASH_M);

// %% [markdown]
// ## Output consistency
//
// The first and last three values of the first and last rows of the `[2, 100, 60]` output, for
// float, for the Linear with int16 weight (not runnable on J6M, but the reference for precision)
// and for the mul + sum form:

// %%
const outMulSum = mulSum.forward(x);
const outLinear16 = linear16.forward(x);
function ends(t: tf.Tensor, b: number, r: number): string {
  const v = Array.from(tf.tidy(() => tf.reshape(tf.slice(t, [b, r, 0], [1, 1, -1]), [-1]).dataSync()));
  const f = (n: number) => n.toFixed(4);
  return `[${v.slice(0, 3).map(f).join(", ")}, ..., ${v.slice(-3).map(f).join(", ")}]`;
}
[
  { output: "float", first: ends(floatLinear, 0, 0), last: ends(floatLinear, 1, 99) },
  { output: "Linear, int16 weight", first: ends(outLinear16, 0, 0), last: ends(outLinear16, 1, 99) },
  { output: "mul + sum, int16", first: ends(outMulSum, 0, 0), last: ends(outMulSum, 1, 99) },
];

// %%
const gap = (a: tf.Tensor, b: tf.Tensor) => tf.tidy(() => tf.mean(tf.abs(tf.sub(a, b))).dataSync()[0]);
console.log(
  `mean |diff|: mul+sum vs float ${gap(outMulSum, floatLinear).toExponential(3)}, Linear int16 vs float ${gap(outLinear16, floatLinear).toExponential(3)}, mul+sum vs Linear int16 ${gap(outMulSum, outLinear16).toExponential(3)}`,
);
qb.plots.outputScatter(floatLinear, outMulSum, { title: "mul + sum (int16) against float output" });

// %% [markdown]
// Both int16 forms sit about as far from float as each other, and closer to each other than to
// float: the per-tensor int16 weight of the mul + sum form costs little against the per-channel
// int16 weight. The price of the rewrite is elsewhere: its calibration (notebook 04) and its
// latency (notebook 05).
