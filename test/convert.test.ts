import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import * as qb from "../src";
import { multiplier, roundShift } from "../src/ops/int/fixedPoint";
import { assertWithinOneStep, setup } from "./helpers";

class OneLinear extends qb.nn.Module {
  quant = new qb.QuantStub();
  fc: qb.nn.Linear;
  act = new qb.nn.ReLU();
  dequant = new qb.DeQuantStub();
  constructor(inF: number, outF: number) {
    super();
    this.fc = new qb.nn.Linear(inF, outF);
  }
  forward(x: tf.Tensor) {
    return this.dequant.forward(this.act.forward(this.fc.forward(this.quant.forward(x))));
  }
}

class Saturating extends qb.nn.Module {
  quant = new qb.QuantStub();
  dequant = new qb.DeQuantStub();
  forward(x: tf.Tensor) {
    const h = this.quant.forward(x);
    return this.dequant.forward(qb.F.add(h, h, { name: "double" }));
  }
}

async function toInteger<T extends qb.nn.Module>(m: T, calibData: tf.Tensor, setters: qb.QconfigSetter[]) {
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

describe("integer model against the fake-quant model", () => {
  before(setup);

  for (const [inF, outF, dtype] of [
    [16, 8, qb.qint8],
    [64, 32, qb.qint16],
    [256, 60, qb.qint8],
  ] as const) {
    it(`random Linear ${inF}->${outF}, ${dtype.name} activations: within one output step for >= 99.9% of elements`, async () => {
      qb.manualSeed(inF + outF);
      const x = tf.randomNormal([50, inF], 0, 1, "float32", inF);
      const setter = dtype === qb.qint8 ? qb.defaultCalibrationQconfigSetter : qb.calibration8bitWeight16bitActQconfigSetter;
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
    const { ir, hb } = await toInteger(new Saturating(), calibData, [qb.defaultCalibrationQconfigSetter]);
    const s = (ir.nodes.find((n) => n.name === "quant")?.output.quant.scale as number[])[0];
    const so = (ir.nodes.find((n) => n.name === "double")?.output.quant.scale as number[])[0];
    const y = hb.forward(tf.tensor([[-1000, 1000, 0.25]])).dataSync();
    // the stub clamps to [-128, 127] steps; the doubled value then clamps to the add's range
    assert.equal(y[0], Math.fround(Math.max(-128, Math.round((-128 * s * 2) / so)) * so));
    assert.equal(y[1], Math.fround(Math.min(127, Math.round((127 * s * 2) / so)) * so));
    assert.ok(Math.abs(y[2] - 0.5) <= so);
  });
});
