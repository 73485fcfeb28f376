import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import * as qb from "../src";
import { assertNoLeak, assertThrows, readJson, setup } from "./helpers";

interface ObsFixture {
  batches: number[][];
  shape: [number, number];
  cases: {
    observer: string;
    dtype: "qint8" | "qint16";
    min?: number;
    max?: number;
    scale?: number;
    scales?: number[];
    picks?: number[];
  }[];
}

const fx = readJson<ObsFixture>("observers.json");
const dtypes = { qint8: qb.qint8, qint16: qb.qint16 };

function feed(obs: qb.quant.Observer, batches: number[][]): void {
  for (const b of batches) {
    const t = tf.tensor(b, fx.shape);
    obs.observe(t);
    t.dispose();
  }
}

function closeRel(got: number, want: number, rel = 1e-6): void {
  assert.ok(Math.abs(got - want) <= rel * Math.abs(want), `got ${got}, reference ${want}`);
}

describe("observers against the reference (PyTorch-made fixtures)", () => {
  before(setup);

  for (const c of fx.cases) {
    it(`${c.observer} ${c.dtype}`, () => {
      const dtype = dtypes[c.dtype];
      if (c.observer === "minmax" || c.observer === "mse") {
        const obs = c.observer === "mse" ? new qb.quant.MSEObserver({ dtype }) : new qb.quant.MinMaxObserver({ dtype });
        feed(obs, fx.batches);
        const r = obs.range();
        assert.ok(r);
        closeRel(r.min[0], c.min as number);
        closeRel(r.max[0], c.max as number);
        closeRel((obs.scale() as Float64Array)[0], c.scale as number);
        if (c.picks) {
          // the last batch (mostly tiny values, two outliers) must pick the same shrink as the reference
          assert.equal((obs as qb.quant.MSEObserver).lastPick[0], c.picks[c.picks.length - 1]);
        }
      } else {
        const obs = new qb.quant.MinMaxObserver({ dtype, axis: 0 });
        feed(obs, [fx.batches[0]]);
        const s = obs.scale() as Float64Array;
        assert.equal(s.length, 4);
        c.scales?.forEach((want, i) => closeRel(s[i], want));
      }
    });
  }

  it("MSE picks each shrink per batch as the reference does", () => {
    const c = fx.cases.find((k) => k.observer === "mse" && k.dtype === "qint8");
    assert.ok(c?.picks);
    const picks: number[] = [];
    const obs = new qb.quant.MSEObserver({ dtype: qb.qint8 });
    for (const b of fx.batches) {
      feed(obs, [b]);
      picks.push(obs.lastPick[0]);
    }
    assert.deepEqual(picks, c.picks);
  });

  it("per-channel MSE picks for each channel what a per-tensor MSE picks on that channel alone", () => {
    const x = tf.tensor(fx.batches[3], fx.shape); // the spiky batch: channels differ a lot
    const perChannel = new qb.quant.MSEObserver({ dtype: qb.qint8, axis: 0 });
    perChannel.observe(x);
    const rows = tf.split(x, fx.shape[0], 0);
    rows.forEach((row, c) => {
      const alone = new qb.quant.MSEObserver({ dtype: qb.qint8 });
      alone.observe(row);
      assert.equal(perChannel.lastPick[c], alone.lastPick[0], `channel ${c}`);
      closeRel((perChannel.scale() as Float64Array)[c], (alone.scale() as Float64Array)[0], 1e-12);
    });
    tf.dispose([x, ...rows]);
  });

  it("moving average: the first batch sets the range, later ones move it by 0.01", () => {
    const obs = new qb.quant.MinMaxObserver({ dtype: qb.qint8 });
    obs.observe(tf.tensor([-1, 2]));
    obs.observe(tf.tensor([-11, 102]));
    const r = obs.range();
    assert.ok(r);
    closeRel(r.min[0], -1 + 0.01 * (-11 + 1), 1e-12);
    closeRel(r.max[0], 2 + 0.01 * (102 - 2), 1e-12);
  });

  it("percentile ignores rare outliers (hand-derived)", () => {
    const values = Array.from({ length: 1001 }, (_, i) => i / 1000); // 0 .. 1
    values[1000] = 1000; // one outlier
    const obs = new qb.quant.PercentileObserver({ dtype: qb.qint16, percentile: 99 });
    obs.observe(tf.tensor(values));
    const r = obs.range();
    assert.ok(r);
    closeRel(r.max[0], 0.99, 1e-6); // 99th percentile of 0..0.999 (+1 outlier), interpolated
    closeRel(r.min[0], 0.01, 1e-6);
    assert.throws(
      () => new qb.quant.PercentileObserver({ dtype: qb.qint8, percentile: 20 }),
      /percentile 20 must be in \(50, 100\]/,
    );
  });

  it("KL: hand-derived thresholds; uniform data keeps its range; a Gaussian's lone outlier is clipped; int16 keeps the range", () => {
    // [4, 0, 0, 1] and [10, 10, 1, 1] over [0, 4) with 2 levels: the full histogram squeezes into 2 groups
    // exactly (each group's non-empty bins are equal), KL 0, so the threshold is the maximum
    assert.equal(qb.quant.klThreshold(Float64Array.of(4, 0, 0, 1), 4, 2), 4);
    assert.equal(qb.quant.klThreshold(Float64Array.of(10, 10, 1, 1), 4, 2), 4);
    // more levels than bins: nothing to choose
    assert.equal(qb.quant.klThreshold(Float64Array.of(1, 2, 3), 3, 8), 3);
    const uniform = tf.linspace(-1, 1, 20001);
    const kl = new qb.quant.KLObserver({ dtype: qb.qint8 });
    kl.observe(uniform);
    const mm = new qb.quant.MinMaxObserver({ dtype: qb.qint8 });
    mm.observe(uniform);
    assert.ok(
      Math.abs((kl.scale() as Float64Array)[0] - (mm.scale() as Float64Array)[0]) <=
        1e-3 * (mm.scale() as Float64Array)[0],
      "uniform: KL keeps the range",
    );
    const gauss = tf.concat([tf.randomNormal([50000], 0, 1, "float32", 9), tf.tensor1d([40])]);
    const k2 = new qb.quant.KLObserver({ dtype: qb.qint8 });
    k2.observe(gauss);
    const m2 = new qb.quant.MinMaxObserver({ dtype: qb.qint8 });
    m2.observe(gauss);
    const [sk, sm] = [(k2.scale() as Float64Array)[0], (m2.scale() as Float64Array)[0]];
    assert.ok(sk < sm / 4, `KL ${sk} vs MinMax ${sm}: the outlier at 40 is clipped`);
    // and the Gaussian body (all but the outlier) is quantized better
    const body = tf.slice(gauss, 0, 50000);
    const err = (s: number) =>
      tf.tidy(
        () =>
          tf.mean(tf.square(tf.sub(qb.quant.fakeQuantize(body, { scale: s, dtype: qb.qint8 }), body))).dataSync()[0],
      );
    assert.ok(err(sk) < err(sm), `MSE with KL's scale ${err(sk)} vs MinMax's ${err(sm)}`);
    const k16 = new qb.quant.KLObserver({ dtype: qb.qint16 });
    k16.observe(gauss);
    assert.equal((k16.range() as { max: Float64Array }).max[0], 40);
    tf.dispose([uniform, gauss, body]);
  });

  it("fixed scale keeps the given scale whatever it sees", () => {
    const obs = new qb.quant.FixedScaleObserver({ dtype: qb.qint16, scale: 7 / 32767 });
    assert.equal((obs.scale() as Float64Array)[0], 7 / 32767);
    obs.observe(tf.tensor([-100, 100]));
    assert.equal((obs.scale() as Float64Array)[0], 7 / 32767);
    assert.throws(() => new qb.quant.FixedScaleObserver({ dtype: qb.qint16, scale: 0 }), /must be a finite number > 0/);
  });

  it("raises on NaN (and on a channel with only ±Inf) and keeps its state", async () => {
    const obs = new qb.quant.MSEObserver({ dtype: qb.qint8 });
    obs.observe(tf.tensor([-1, 1]));
    const before = obs.snapshot();
    await assertThrows(() => obs.observe(tf.tensor([0, NaN])), /values are NaN/);
    await assertThrows(() => obs.observe(tf.tensor([-Infinity, Infinity])), /all ±Inf/);
    assert.deepEqual(obs.snapshot(), before);
  });

  it("±Inf (a −∞ attention mask) saturates: the range is that of the finite values", () => {
    for (const Obs of [qb.quant.MinMaxObserver, qb.quant.MSEObserver]) {
      const withInf = new Obs({ dtype: qb.qint8, axis: 0 });
      withInf.observe(tf.tensor([-3, 2, -Infinity, 0.5, 1, Infinity, 4, -2], [2, 4]));
      const finite = new Obs({ dtype: qb.qint8, axis: 0 });
      // each infinity stands at its channel's finite end
      finite.observe(tf.tensor([-3, 2, -3, 0.5, 1, 4, 4, -2], [2, 4]));
      assert.deepEqual(withInf.range(), finite.range(), Obs.observerName);
      assert.deepEqual(Array.from(withInf.range()?.min ?? []), [-3, -2], Obs.observerName);
    }
  });

  it("does not leak tensors", async () => {
    const x = tf.randomNormal([8, 32]);
    const mse = new qb.quant.MSEObserver({ dtype: qb.qint16, axis: 0 });
    await assertNoLeak(() => mse.observe(x));
    const pct = new qb.quant.PercentileObserver({ dtype: qb.qint8 });
    await assertNoLeak(() => pct.observe(x));
    x.dispose();
  });
});
