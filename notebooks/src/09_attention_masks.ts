// %% [markdown]
// # 09 · Attention masks meet quantization
//
// Decoders and padded encoders hide some positions from attention: their scores must not count in
// the softmax. Exported models do it in one of two ways:
//
// - **additive**: `scores + bias`, with `bias` 0 where attention is allowed and a large negative
//   number (−10000 is the classic) where it is not;
// - **masked fill**: `scores.masked_fill(mask, -inf)`.
//
// In float both are exact. Quantized, both hit the same wall: an int8 or int16 tensor cannot hold
// −∞ or −10000 next to scores of a few units — *where* the "very negative" value lands depends on
// the scale, and either the scores or the mask pays for it. This notebook measures both forms on
// the same causal attention (same weights, same calibration data) and the two fixes that work.

// %%
import * as tf from "@tensorflow/tfjs";
import * as qb from "quantbook";

await qb.backend.init();
qb.setMarch(qb.March.NASH_M);
const T = 12;
const D = 32;
// causal: position i may look at positions 0..i only (1 marks a hidden key)
const causal = tf.tidy(() =>
  tf.greater(tf.sub(tf.range(0, T).reshape([1, T]), tf.range(0, T).reshape([T, 1])), 0).cast("float32"),
);

class CausalAttention extends qb.nn.Module {
  quant = new qb.nn.QuantStub();
  biasQuant = new qb.nn.QuantStub();
  q = new qb.nn.Linear(D, D);
  k = new qb.nn.Linear(D, D);
  v = new qb.nn.Linear(D, D);
  out = new qb.nn.Linear(D, D);
  dequant = new qb.nn.DeQuantStub();
  additiveBias = tf.mul(causal, -10000);
  constructor(readonly masking: "additive" | "fill") {
    super();
  }
  forward(x: tf.Tensor): tf.Tensor {
    const h = this.quant.forward(x);
    const scores = qb.F.mul(
      qb.F.matmul(this.q.forward(h), qb.F.transpose(this.k.forward(h), [0, 2, 1]), { name: "scores" }),
      1 / Math.sqrt(D),
      { name: "scale" },
    );
    const masked =
      this.masking === "additive"
        ? qb.F.add(scores, this.biasQuant.forward(this.additiveBias), { name: "mask" }) // a constant enters through its own QuantStub
        : qb.F.maskedFill(scores, causal, -Infinity, { name: "mask" });
    const attn = qb.F.softmax(masked, -1, { name: "attn" });
    return this.dequant.forward(this.out.forward(qb.F.matmul(attn, this.v.forward(h), { name: "mix" })));
  }
}

qb.nn.manualSeed(3);
const additive = new CausalAttention("additive").eval();
const fill = new CausalAttention("fill").eval();
fill.loadStateDict(additive.stateDict());
const batches = [1, 2, 3, 4].map((s) => tf.randomNormal([2, T, D], 0, 1, "float32", s));
const test = tf.randomNormal([2, T, D], 0, 1, "float32", 42);
const floatDiff = tf.tidy(() => tf.max(tf.abs(tf.sub(additive.forward(test), fill.forward(test)))).dataSync()[0]);
console.log(`float outputs of the two forms differ by at most ${floatDiff.toExponential(2)}`);

// %% [markdown]
// Quantize both all-int8, calibrate on the same four batches, and compare with float on a
// held-out batch.

// %%
async function quantized(
  model: CausalAttention,
  setters: qb.qconfig.QconfigSetter[] = [qb.qconfig.defaultCalibrationQconfigSetter],
): Promise<qb.nn.Module> {
  const c = qb.prepare(model, batches[0], { qconfigSetter: setters });
  qb.setFakeQuantize(c, qb.FakeQuantState.CALIBRATION);
  await qb.calibrate(c, batches);
  qb.setFakeQuantize(c, qb.FakeQuantState.VALIDATION);
  return c;
}
const qAdditive = await quantized(additive);
const qFill = await quantized(fill);
const reference = additive.forward(test);
const l1 = (m: qb.nn.Module) =>
  tf.tidy(() => tf.mean(tf.abs(tf.sub(m.forward(test) as tf.Tensor, reference))).dataSync()[0]);
const scaleOf = (m: qb.nn.Module, name: string) =>
  qb.analysis
    .preparedOps(m)
    .find((o) => o.info.name === name)!
    .output!.scale()![0];
const scoreScale = scaleOf(qAdditive, "scale");
console.log(
  `scores: int8 step ${scoreScale.toExponential(2)}, so their range bottoms out at ${(-128 * scoreScale).toFixed(2)}`,
);
console.log(
  `additive mask: the Add's step is ${scaleOf(qAdditive, "mask").toExponential(2)} — every real score rounds to 0`,
);
console.log(
  `held-out mean |output - float|: additive ${l1(qAdditive).toExponential(3)}, masked fill ${l1(qFill).toExponential(3)}`,
);

// %% [markdown]
// Neither is good, for opposite reasons:
//
// - **additive**: the Add's range must reach −10000, so at int8 one step is ≈ 78 and all real
//   scores become 0 — each query attends evenly to every key it may see. The hidden keys do get
//   nothing (−10000 survives), but the information in the scores is gone.
// - **masked fill**: filling only selects values, so the op keeps the scores' own scale (that is
//   how the chip runs it); −∞ saturates to the lowest code of that grid — here about −0.8, barely
//   below the real scores. After the softmax the hidden keys get almost as much weight as the
//   visible ones: the mask leaks. That is why it is *worse* than the additive form here.
//
// Two fixes follow from that reading. For the additive form, int16 on the mask Add shrinks its
// step 256-fold (to ≈ 0.3). For the masked fill, give the scores a **fixed** int16 scale whose range
// reaches far below any real score — 16/32767 puts the filled value at −16 (e^−16 ≈ 1e−7 after the
// softmax) with a step of 4.9e−4 — the same move as the article's fixed 7/32767 on a mul output.

// %%
const qAdditive16 = await quantized(additive, [
  qb.qconfig.ModuleNameQconfigSetter({ mask: qb.qconfig.getQconfig({ outDtype: qb.qint16 }) }),
  qb.qconfig.defaultCalibrationQconfigSetter,
]);
const qFillFixed = await quantized(fill, [
  qb.qconfig.FixedScaleQconfigSetter({ scale: 16 / 32767 }),
  qb.qconfig.defaultCalibrationQconfigSetter,
]);
console.log(
  `additive, int16 Add (step ${scaleOf(qAdditive16, "mask").toExponential(2)}): held-out error ${l1(qAdditive16).toExponential(3)}`,
);
console.log(`masked fill, scores at a fixed 16/32767 (int16): held-out error ${l1(qFillFixed).toExponential(3)}`);
const configs = [
  { config: "additive, int8", model: qAdditive },
  { config: "masked fill, int8", model: qFill },
  { config: "additive, int16 Add", model: qAdditive16 },
  { config: "masked fill, fixed int16 scores", model: qFillFixed },
];
console.log(
  `NASH_M rules: ${configs.every((c) => qb.march.checkModel(c.model, qb.March.NASH_M).ok) ? "all four pass" : "violations"}`,
);
qb.plots.accuracyVsLatency(
  configs.map((c) => ({
    config: c.config,
    latencyMs: qb.march.perf(qb.export(c.model, batches[0])).latencyMs,
    error: l1(c.model),
  })),
  { errorTitle: "held-out mean |output − float| (log)" },
);

// %% [markdown]
// On a model you did not write, you will not know which form its exporter chose. The sensitivity
// table finds the additive trap on its own: the mask Add comes first, far ahead of every GEMM. (For
// an imported graph, `qb.io.loadOnnx` turns `Where(mask, -inf, scores)` into the same masked fill,
// and an integer mask input cast to float into a QuantStub, so both forms show up as they do here.)

// %%
const qa = new qb.analysis.QuantAnalysis(additive, qAdditive);
qa.sensitivity({ data: test });
