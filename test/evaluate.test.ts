/**
 * qb.analysis.evaluate: cosine, MSE, max |error| and SQNR against values derived by hand (a stub model whose
 * output is the fake-quantized input), top-k agreement and accuracy against direct argmax
 * comparisons, user metrics, the pass / fail threshold, bad input and leaks.
 */
import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import * as qb from "../src";
import { assertNoLeak, assertThrows, calibrated, setup } from "./helpers";

class Stubbed extends qb.nn.Module {
  quant = new qb.nn.QuantStub();
  dequant = new qb.nn.DeQuantStub();
  forward(x: tf.Tensor): tf.Tensor {
    return this.dequant.forward(this.quant.forward(x));
  }
}

class Classifier extends qb.nn.Module {
  quant = new qb.nn.QuantStub();
  fc = new qb.nn.Linear(4, 5);
  dequant = new qb.nn.DeQuantStub();
  forward(x: tf.Tensor): tf.Tensor {
    return this.dequant.forward(this.fc.forward(this.quant.forward(x)));
  }
}

describe("qb.analysis.evaluate", () => {
  before(setup);

  it("cosine, MSE, max |error| and SQNR equal the values derived from the fake-quantized input", async () => {
    const x = tf.tensor([[0.3, -1.2, 0.77, 2.5, -0.01, 1.1]]);
    const m = await calibrated(new Stubbed(), x, [qb.qconfig.defaultQatQconfigSetter]);
    const ev = await qb.analysis.evaluate(m, [x]);
    // MinMax qint8 on x: s = max|x| / 127.5; the output is clamp(round(x / s), -128, 127)·s (2.5 / s = 127.5 saturates at 127)
    const xs = Array.from(x.dataSync());
    const s = Math.fround(2.5 / 127.5);
    const q = xs.map((v) =>
      Math.fround(Math.min(127, Math.max(-128, Math.round(Math.fround(v * Math.fround(1 / s))))) * s),
    );
    assert.equal(q[3], Math.fround(127 * s));
    const dot = xs.reduce((a, v, i) => a + v * q[i], 0);
    const nx = xs.reduce((a, v) => a + v * v, 0);
    const nq = q.reduce((a, v) => a + v * v, 0);
    const se = xs.reduce((a, v, i) => a + (v - q[i]) ** 2, 0);
    const [row] = ev.rows;
    const close = (a: number, b: number, what: string) =>
      assert.ok(Math.abs(a - b) <= 1e-6 * Math.abs(b), `${what}: ${a} vs ${b}`);
    close(row.cosine, dot / Math.sqrt(nx * nq), "cosine");
    close(row.mse, se / xs.length, "mse");
    close(row.max_abs, Math.max(...xs.map((v, i) => Math.abs(v - q[i]))), "max_abs");
    close(row.sqnr_db, 10 * Math.log10(nx / se), "sqnr");
    assert.equal(row.min_cosine, 0.99);
    assert.equal(row.pass, true);
    assert.equal(ev.samples, 1);
    assert.match(ev.caption, /PASS at cosine ≥ 0\.99/);
    // a threshold no quantized output reaches
    const strict = await qb.analysis.evaluate(m, [x], { minCosine: 1 });
    assert.equal(strict.passed, false);
    assert.match(strict.caption, /FAIL at cosine ≥ 1/);
    x.dispose();
    m.dispose();
  });

  it("classification: top-1 / top-5 agreement and accuracy match a direct comparison; task thresholds", async () => {
    qb.nn.manualSeed(3);
    const float = new Classifier().eval();
    const batches = [0, 1, 2].map((k) => tf.randomNormal([8, 4], 0, 1, "float32", 20 + k));
    const m = await calibrated(float, batches[0], [qb.qconfig.defaultQatQconfigSetter]);
    const labels = Array.from({ length: 24 }, (_, i) => (i * 7) % 5);
    let top1 = 0;
    let accF = 0;
    let accQ = 0;
    batches.forEach((b, k) => {
      const f = tf.tidy(() => Array.from(tf.argMax(float.forward(b) as tf.Tensor, 1).dataSync()));
      const q = tf.tidy(() => Array.from(tf.argMax(m.forward(b) as tf.Tensor, 1).dataSync()));
      f.forEach((c, r) => {
        if (q[r] === c) top1++;
        if (c === labels[8 * k + r]) accF++;
        if (q[r] === labels[8 * k + r]) accQ++;
      });
    });
    const calls: string[] = [];
    const ev = await qb.analysis.evaluate(m, batches, {
      task: "classification",
      labels,
      metrics: {
        meanAbs: (f, q) => {
          calls.push(`${f.length}:${f[0].shape}/${q[0].shape}`);
          return tf.tidy(() => tf.mean(tf.abs(tf.sub(f[0], q[0]))).dataSync()[0]);
        },
      },
    });
    assert.equal(ev.samples, 24);
    assert.equal(ev.top1, top1 / 24);
    assert.ok(
      (ev.top5 as number) >= (ev.top1 as number) && (ev.top5 as number) === 1,
      "5 classes: the top 5 hold every class",
    );
    assert.deepEqual(ev.accuracy, { float: accF / 24, quantized: accQ / 24 });
    assert.deepEqual(calls, ["1:8,5/8,5", "1:8,5/8,5", "1:8,5/8,5"]);
    assert.ok(ev.custom.meanAbs > 0);
    assert.equal(ev.rows[0].min_cosine, 0.99);
    assert.equal((await qb.analysis.evaluate(m, batches, { task: "detection" })).rows[0].min_cosine, 0.95);
    tf.dispose(batches);
    m.dispose();
    float.dispose();
  });

  it("refuses what it cannot evaluate, and leaks nothing", async () => {
    const x = tf.tensor([[0.3, -1.2, 0.77, 2.5]]);
    qb.setMarch(qb.March.NASH_M);
    const raw = qb.prepare(new Stubbed().eval(), x, {
      qconfigSetter: [qb.qconfig.defaultQatQconfigSetter],
      warn: false,
    });
    await assertThrows(() => qb.analysis.evaluate(raw, [x]), /evaluate: the model is in FLOAT state/, /VALIDATION/);
    const m = await calibrated(new Stubbed(), x, [qb.qconfig.defaultQatQconfigSetter]);
    await assertThrows(
      () => qb.analysis.evaluate(m, [x], { metrics: { broken: () => NaN } }),
      /evaluate: metric 'broken': it returned NaN; return a number/,
    );
    await assertThrows(
      () => qb.analysis.evaluate(m, [tf.zeros([1, 3])]),
      /data input 0 has shape \[1,3\], expected \[1,4\], the shape the model was prepared with/,
    );
    await assertThrows(() => qb.analysis.evaluate(m, []), /evaluate: no batches/);
    await assertNoLeak(() => qb.analysis.evaluate(m, [x, x], { task: "classification", metrics: { one: () => 1 } }));
    x.dispose();
    m.dispose();
    raw.dispose();
  });
});

describe("metrics, by hand", () => {
  before(setup);
  it("Top1: the share of rows whose largest entry is at the same index", () => {
    const ref = tf.tensor3d([
      [
        [1, 2, 3],
        [3, 2, 1],
      ],
      [
        [0, 5, 1],
        [2, 2.5, 1],
      ],
    ]);
    const q = tf.tensor3d([
      [
        [1, 3, 2],
        [3, 2, 1],
      ],
      [
        [0, 5, 1],
        [2.6, 2.5, 1],
      ],
    ]);
    // rows: (0,0) moved 2→1, (0,1) same, (1,0) same, (1,1) moved 1→0
    assert.equal(qb.analysis.metric("Top1", ref, q), 0.5);
    assert.equal(qb.analysis.metric("Top1", ref, ref), 1);
    tf.dispose([ref, q]);
  });
});

describe("qb.analysis.chooseCalibration", () => {
  before(setup);

  it("measures max, percentile, KL and MSE on the same data, chooses the best cosine, and its setter reproduces it", async (t) => {
    const model = await qb.io.loadOnnx(
      require("node:path").join(__dirname, "..", "..", "test", "fixtures", "onnx", "mobilenet_v2_opset13.onnx"),
    );
    const batches = [0, 1].map((k) => tf.randomNormal([1, 3, 32, 32], 0, 1, "float32", 60 + k));
    qb.setMarch(qb.March.NASH_M);
    const choice = await qb.analysis.chooseCalibration(model, batches);
    t.diagnostic(choice.caption);
    assert.deepEqual(
      choice.rows.map((r) => r.method),
      ["max", "percentile", "kl", "mse"],
    );
    const best = Math.max(...choice.rows.map((r) => r.cosine));
    assert.equal(choice.rows.find((r) => r.chosen)?.cosine, best);
    assert.equal(choice.rows.filter((r) => r.chosen).length, 1);
    const m = qb.prepare(model.eval(), batches[0], { qconfigSetter: [choice.setter], warn: false });
    qb.setFakeQuantize(m, qb.FakeQuantState.CALIBRATION);
    await qb.calibrate(m, batches);
    qb.setFakeQuantize(m, qb.FakeQuantState.VALIDATION);
    const ev = await qb.analysis.evaluate(m, batches);
    assert.equal(ev.rows[0].cosine, best, "the chosen setter reproduces its cosine");
    await assertThrows(
      () => qb.analysis.chooseCalibration(model, batches, { candidates: ["entropy" as "kl"] }),
      /unknown method entropy; choose from max, percentile, kl, mse/,
    );
    tf.dispose(batches);
    m.dispose();
    model.dispose();
  });
});

describe("qb.analysis.biasCorrection", () => {
  before(setup);

  it("moves each bias by −ΔW·E[x] (derived by hand) and removes the output's mean shift", async () => {
    qb.nn.manualSeed(7);
    const float = new Classifier().eval();
    // inputs with a clear non-zero mean: a weight error shifts the output by ΔW·E[x]
    const x = tf.add(tf.randomNormal([64, 4], 0, 0.3, "float32", 71), tf.tensor1d([1.5, -2, 0.7, 3])) as tf.Tensor;
    qb.setMarch(qb.March.NASH_M);
    const m = qb.prepare(float, x, {
      qconfigSetter: [qb.qconfig.calibration8bitWeight16bitActQconfigSetter],
      warn: false,
    });
    qb.setFakeQuantize(m, qb.FakeQuantState.CALIBRATION);
    await qb.calibrate(m, [x]);
    qb.setFakeQuantize(m, qb.FakeQuantState.VALIDATION);
    const shift = () =>
      tf.tidy(() =>
        Array.from(tf.mean(tf.sub(m.forward(x) as tf.Tensor, float.forward(x) as tf.Tensor), 0).dataSync()),
      );
    const before = shift();
    const fc = (m as unknown as { fc: { weight: tf.Tensor; bias: tf.Tensor } }).fc;
    const b0 = Array.from(fc.bias.dataSync());
    const op = qb.analysis.preparedOps(m).find((o) => o.info.name === "fc") as ReturnType<
      typeof qb.analysis.preparedOps
    >[number];
    const expected = tf.tidy(() => {
      const dw = tf.sub(
        qb.quant.fakeQuantize(fc.weight, { scale: op.weight?.scale() as Float64Array, dtype: qb.qint8, axis: 0 }),
        fc.weight,
      );
      return Array.from(tf.matMul(dw, tf.reshape(tf.mean(x, 0), [4, 1])).dataSync());
    });
    const table = qb.analysis.biasCorrection(m, [x]);
    assert.deepEqual(
      table.rows.map((r) => [r.op_name, r.corrected]),
      [["fc", true]],
    );
    const b1 = Array.from(fc.bias.dataSync());
    b1.forEach((v, o) =>
      assert.ok(Math.abs(v - (b0[o] - expected[o])) <= 1e-5, `bias ${o}: ${v} vs ${b0[o]} − ${expected[o]}`),
    );
    const after = shift();
    const size = (v: number[]) => Math.max(...v.map(Math.abs));
    assert.ok(size(after) < size(before) / 3, `mean output shift ${size(before)} → ${size(after)}`);
    assert.throws(() => qb.analysis.biasCorrection(m, []), /biasCorrection: no data/);
    x.dispose();
    m.dispose();
    float.dispose();
  });
});
