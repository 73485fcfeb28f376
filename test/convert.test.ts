import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import * as qb from "../src";
import { multiplier, roundShift } from "../src/ops/int/fixedPoint";
import { exactMatMul, prepareRight } from "../src/ops/int/exactGemm";
import { assertWithinOneStep, setup } from "./helpers";

class OneLinear extends qb.nn.Module {
  quant = new qb.nn.QuantStub();
  fc: qb.nn.Linear;
  act = new qb.nn.ReLU();
  dequant = new qb.nn.DeQuantStub();
  constructor(inF: number, outF: number) {
    super();
    this.fc = new qb.nn.Linear(inF, outF);
  }
  forward(x: tf.Tensor) {
    return this.dequant.forward(this.act.forward(this.fc.forward(this.quant.forward(x))));
  }
}

class Saturating extends qb.nn.Module {
  quant = new qb.nn.QuantStub();
  dequant = new qb.nn.DeQuantStub();
  forward(x: tf.Tensor) {
    const h = this.quant.forward(x);
    return this.dequant.forward(qb.F.add(h, h, { name: "double" }));
  }
}

async function toInteger<T extends qb.nn.Module>(m: T, calibData: tf.Tensor, setters: qb.qconfig.QconfigSetter[]) {
  const c = qb.prepare(m.eval(), calibData, { qconfigSetter: setters });
  qb.setFakeQuantize(c, qb.FakeQuantState.CALIBRATION);
  await qb.calibrate(c, [calibData], { onProgress: () => {} });
  qb.setFakeQuantize(c, qb.FakeQuantState.VALIDATION);
  const ir = qb.export(c, calibData);
  return { c, ir, hb: qb.convert(ir, qb.March.NASH_M) };
}

describe("fixed-point requantization (hand-derived)", () => {
  it("multiplier is 24 bits with relative error at most 2^-24", () => {
    for (const r of [1, 0.5, 1 / 3, 0.000123, 7.77, 123456.7, 2 ** -30]) {
      const { m, shift } = multiplier(r);
      assert.ok(m >= 2 ** 23 && m < 2 ** 24, `m=${m} for r=${r}`);
      assert.ok(Math.abs(m / 2 ** shift - r) / r <= 2 ** -24, `r=${r}`);
    }
    assert.throws(() => multiplier(0), /must be a finite number > 0/);
  });
  it("rounds half up after the shift", () => {
    assert.equal(roundShift(6, 2), 2); // 1.5 -> 2
    assert.equal(roundShift(-6, 2), -1); // -1.5 -> -1
    assert.equal(roundShift(5, 2), 1);
    assert.equal(roundShift(3, -2), 12);
  });
});

describe("exact integer GEMM on the float32 backend", () => {
  before(setup);
  /** Seeded integer codes in [lo, hi]. */
  const codes = (n: number, lo: number, hi: number, seed: number) => {
    let a = seed >>> 0;
    return Float32Array.from({ length: n }, () => {
      a = (Math.imul(a, 1664525) + 1013904223) >>> 0;
      return lo + (a % (hi - lo + 1));
    });
  };
  for (const [label, aLo, aHi, bLo, bHi, k] of [
    ["int8 × int8, K 4608 (five chunks)", -128, 127, -128, 127, 4608],
    ["int16 × int8 (input split in digits)", -32768, 32767, -128, 127, 1500],
    ["int16 × int16 (both split)", -32768, 32767, -32768, 32767, 700],
    ["extremes: every code at its bound", -32768, -32768, -32768, -32768, 300],
  ] as const) {
    it(`${label}: equals the schoolbook sum bit for bit`, () => {
      const m = 7;
      const n = 5;
      const a = codes(m * k, aLo, aHi, 1);
      const b = codes(k * n, bLo, bHi, 2);
      const before = tf.memory().numTensors;
      const got = exactMatMul(a, m, prepareRight(b, k, n, Math.max(Math.abs(aLo), Math.abs(aHi))));
      assert.equal(tf.memory().numTensors, before, "no tensor left behind");
      for (let i = 0; i < m; i++)
        for (let j = 0; j < n; j++) {
          let s = 0;
          for (let p = 0; p < k; p++) s += a[i * k + p] * b[p * n + j];
          assert.equal(got[i * n + j], s, `[${i}, ${j}]`);
        }
    });
  }
});

describe("integer model against the fake-quant model", () => {
  before(setup);

  for (const [inF, outF, dtype] of [
    [16, 8, qb.qint8],
    [64, 32, qb.qint16],
    [256, 60, qb.qint8],
  ] as const) {
    it(`random Linear ${inF}->${outF}, ${dtype.name} activations: within one output step for >= 99.9% of elements`, async () => {
      qb.nn.manualSeed(inF + outF);
      const x = tf.randomNormal([50, inF], 0, 1, "float32", inF);
      const setter =
        dtype === qb.qint8
          ? qb.qconfig.defaultCalibrationQconfigSetter
          : qb.qconfig.calibration8bitWeight16bitActQconfigSetter;
      const { c, ir, hb } = await toInteger(new OneLinear(inF, outF), x, [setter]);
      const fq = c.forward(x).dataSync();
      const y = hb.forward(x).dataSync();
      const step = (ir.nodes.find((n) => n.name === "act")?.output.quant.scale as number[])[0];
      assertWithinOneStep(y, fq, step * (1 + 1e-6));
      x.dispose();
    });
  }

  it("saturates at the dtype limits", async () => {
    const calibData = tf.tensor([[-1, 0.5, 1]]);
    const { ir, hb } = await toInteger(new Saturating(), calibData, [qb.qconfig.defaultCalibrationQconfigSetter]);
    const s = (ir.nodes.find((n) => n.name === "quant")?.output.quant.scale as number[])[0];
    const so = (ir.nodes.find((n) => n.name === "double")?.output.quant.scale as number[])[0];
    const y = hb.forward(tf.tensor([[-1000, 1000, 0.25]])).dataSync();
    // the stub clamps to [-128, 127] steps; the doubled value then clamps to the add's range
    assert.equal(y[0], Math.fround(Math.max(-128, Math.round((-128 * s * 2) / so)) * so));
    assert.equal(y[1], Math.fround(Math.min(127, Math.round((127 * s * 2) / so)) * so));
    assert.ok(Math.abs(y[2] - 0.5) <= so);
  });
});
