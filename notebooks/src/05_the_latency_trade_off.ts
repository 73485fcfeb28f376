// %% [markdown]
// # 05 · What each way to int16 costs
//
// Three ways to give `linear2` int16 precision on a J6M, all with int16 output:
//
// 1. **int16 input, int8 weight** — the template as it is (the weight keeps its int8 error);
// 2. **int8 input, int16 weight** — the fix `checkModel` suggests first (the input is
//    re-quantized to int8 before the Linear);
// 3. **int16 input and int16 weight** — only as broadcast mul + sum.
//
// For each: the output error against float, whether the chip accepts it, and an estimate of
// latency. The latency comes from an analytic model (tensor-unit rate per dtype pair, vector
// unit, DDR bandwidth, a fixed cost per op; parameters in `src/march/data/`), not from a chip:
// read the ranking, not the microseconds.

// %%
import * as tf from "@tensorflow/tfjs";
import * as qb from "quantbook";

await qb.backend.init();
qb.setMarch(qb.March.NASH_M);
const sd = (await qb.io.loadTorch(qb.examples.fixturePath("float-checkpoint.ckpt"))) as Record<string, tf.Tensor>;
const x = (await qb.io.loadTorch(qb.examples.fixturePath("random_data.pt"))) as tf.Tensor;
const model = new qb.examples.SmallModel();
const loaded = model.loadStateDict(sd);
const mulSumModel = qb.transforms.replaceLinearWithBroadcastMulSum(model, "linear2");
const floatOut = model.eval().forward(x);

const configs: { config: string; model: qb.nn.Module; setters: qb.qconfig.QconfigSetter[] }[] = [
  { config: "int16 input, int8 weight", model, setters: [qb.qconfig.calibration8bitWeight16bitActQconfigSetter] },
  {
    config: "int8 input, int16 weight",
    model,
    setters: [
      qb.qconfig.ModuleNameQconfigSetter({
        linear2: qb.qconfig.getQconfig({ inDtype: qb.qint8, weightDtype: qb.qint16 }),
      }),
      qb.qconfig.calibration8bitWeight16bitActQconfigSetter,
    ],
  },
  {
    config: "int16 both, mul + sum",
    model: mulSumModel,
    setters: [qb.qconfig.calibration8bitWeight16bitActQconfigSetter],
  },
];

// %%
const results = [];
for (const c of configs) {
  const calib = qb.prepare(c.model.eval(), x, { qconfigSetter: c.setters });
  qb.setFakeQuantize(calib, qb.FakeQuantState.CALIBRATION);
  await qb.calibrate(calib, [x]);
  qb.setFakeQuantize(calib, qb.FakeQuantState.VALIDATION);
  const hb = qb.convert(qb.export(calib, x), qb.March.NASH_M);
  const p = qb.march.perf(hb);
  const error = tf.tidy(() => tf.mean(tf.abs(tf.sub(hb.forward(x), floatOut))).dataSync()[0]);
  const linear2Us = p.ops.filter((o) => o.op.startsWith("linear2")).reduce((a, o) => a + o.timeUs, 0);
  results.push({
    config: c.config,
    error,
    latencyMs: p.latencyMs,
    linear2_us: linear2Us,
    int16_mac_share: p.int16MacShare,
    perf: p,
  });
}
results.map(({ perf, ...r }) => ({ ...r, latency_us: r.latencyMs * 1000 }));

// %% [markdown]
// The ranking matches what Horizon's engineers report for the real chip: int16 input with an
// int8 weight is fastest, the int16 weight with an int8 input next, and int16 on both sides
// through mul + sum is by far the slowest — the multiply runs on the vector unit and writes a
// `[2, 100, 60, 256]` int16 tensor to memory before the sum reads it back.

// %%
qb.plots.latencyBars(results);

// %%
qb.plots.accuracyVsLatency(results, { errorTitle: "mean |integer model - float| (log)" });

// %% [markdown]
// Where the mul + sum form spends its time, per op:

// %%
const order = results.map((r) => `${r.config}: ${(r.latencyMs * 1000).toFixed(1)} µs`).join(" < ");
console.log(`estimated latency: ${order}`);
results[2].perf;

// %% [markdown]
// The int16 MAC share — MACs with an int16 operand over all MACs — is the reference toolchain's
// quick indicator: under 10% is fine, 10–30% worth a review, above 30% costly. With int16
// activations everywhere, every GEMM of this model counts as int16, which is why the template's
// cost is worth checking before reaching for more int16.
