// %% [markdown]
// # 06 · The same tools on your own model
//
// Everything in notebooks 01–05 works on any model written as a `qb.nn.Module`. The recipe:
//
// 1. Write the module with the **same attribute names** as your PyTorch model, so its state dict
//    loads as is (`linear1.weight`, `blocks.0.fc.bias`, ...). Use `qb.nn` layers, and `qb.F` for
//    every op that computes a new value (mul, add, matmul, sigmoid, ...), so each gets its own
//    fake-quantizer.
// 2. Load the weights: `qb.io.loadTorch` for `torch.save` files, `qb.io.loadSafetensors` for
//    safetensors.
// 3. Prepare, calibrate on a few representative batches, then ask the tools.
//
// The model below is a small attention-like block: query / key / value projections, a `matmul`
// of queries and keys, a sigmoid gate in place of softmax, a weighted sum of values, an output
// projection.

// %%
import * as tf from "@tensorflow/tfjs";
import * as qb from "quantbook";
import * as os from "os";
import * as path from "path";

await qb.backend.init();
qb.setMarch(qb.March.NASH_M);

class GatedAttention extends qb.nn.Module {
  quant = new qb.nn.QuantStub();
  q = new qb.nn.Linear(32, 16);
  k = new qb.nn.Linear(32, 16);
  v = new qb.nn.Linear(32, 32);
  out = new qb.nn.Linear(32, 8);
  dequant = new qb.nn.DeQuantStub();
  forward(x: tf.Tensor): tf.Tensor {
    const h = this.quant.forward(x); // [batch, tokens, 32]
    // qb.F.transpose, not tf.transpose: a raw tf op between two ops would cut the traced graph
    const scores = qb.F.matmul(this.q.forward(h), qb.F.transpose(this.k.forward(h), [0, 2, 1]), { name: "scores" });
    const gate = qb.F.sigmoid(qb.F.mul(scores, 0.25, { name: "scale" }), { name: "gate" });
    const mixed = qb.F.matmul(gate, this.v.forward(h), { name: "mix" });
    return this.dequant.forward(this.out.forward(qb.F.mean(mixed, 1, false, { name: "pool" })));
  }
}

qb.nn.manualSeed(7);
const trained = new GatedAttention();
// stand-in for your checkpoint: save the weights as safetensors and load them into a new instance
const file = path.join(os.tmpdir(), "gated-attention.safetensors");
const saved = trained.stateDict();
await qb.io.saveSafetensors(file, saved);
const model = new GatedAttention();
const loadResult = model.loadStateDict(await qb.io.loadSafetensors(file));
console.log(
  `loaded ${Object.keys(saved).length} tensors; missing [${loadResult.missingKeys}], unexpected [${loadResult.unexpectedKeys}]`,
);

// %% [markdown]
// Calibrate on several batches (here: random tokens with a few large activations, as real data
// often has), and look at the check report `prepare` writes: float inputs that bypass a
// QuantStub, shared or unused modules, ops left without a qconfig.

// %%
function batch(seed: number): tf.Tensor {
  return tf.tidy(() =>
    tf.mul(
      tf.randomNormal([4, 12, 32], 0, 1, "float32", seed),
      tf.add(1, tf.mul(tf.randomUniform([4, 12, 32], 0, 1, "float32", seed + 100).greater(0.98), 8)),
    ),
  );
}
const batches = [1, 2, 3, 4].map(batch);
const calib = qb.prepare(model.eval(), batches[0], { qconfigSetter: [qb.qconfig.defaultCalibrationQconfigSetter] });
console.log(qb.analysis.modelCheckResult(calib).text);
qb.setFakeQuantize(calib, qb.FakeQuantState.CALIBRATION);
await qb.calibrate(calib, batches);
qb.setFakeQuantize(calib, qb.FakeQuantState.VALIDATION);

// %% [markdown]
// All int8 (`defaultCalibrationQconfigSetter`) is the cheapest configuration. Which points hurt?

// %%
const qa = new qb.analysis.QuantAnalysis(model, calib);
const table = qa.sensitivity({ data: batches[0] });
table;

// %% [markdown]
// The advisor reads the same data and lists layers that look abnormal, each with a suggested fix.

// %%
qa.advisor();

// %% [markdown]
// `sensitiveOpQconfigSetter` turns the table into a qconfig: the worst points (here the two
// worst) go to int16, everything else keeps the template. Placed first, it wins over the template.

// %%
const promoted = qb.prepare(model, batches[0], {
  qconfigSetter: [qb.qconfig.sensitiveOpQconfigSetter(table, { topk: 2 }), qb.qconfig.defaultCalibrationQconfigSetter],
});
qb.setFakeQuantize(promoted, qb.FakeQuantState.CALIBRATION);
await qb.calibrate(promoted, batches);
qb.setFakeQuantize(promoted, qb.FakeQuantState.VALIDATION);
const test = batch(99);
const reference = model.forward(test);
const l1 = (m: qb.nn.Module) =>
  tf.tidy(() => tf.mean(tf.abs(tf.sub(m.forward(test) as tf.Tensor, reference))).dataSync()[0]);
const before = l1(calib);
const after = l1(promoted);
console.log(
  `held-out batch, mean |output - float|: all int8 ${before.toExponential(3)}, top-2 in int16 ${after.toExponential(3)}`,
);

// %% [markdown]
// Before deploying: does the chip accept the new dtypes, and what do they cost?

// %%
const check = qb.march.checkModel(promoted, qb.March.NASH_M);
console.log(`NASH_M rules: ${check.ok ? "all ops pass" : `${check.violations.length} violation(s)`}`);
const costs = [
  { config: "all int8", latencyMs: qb.march.perf(qb.export(calib, batches[0])).latencyMs },
  { config: "top-2 int16", latencyMs: qb.march.perf(qb.export(promoted, batches[0])).latencyMs },
];
qb.plots.latencyBars(costs);
