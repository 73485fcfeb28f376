import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import * as qb from "../src";
import { assertNoLeak, assertThrows, calibrated, fixture, maxAbsDiff, setup } from "./helpers";

let sd: Record<string, tf.Tensor>;
let x: tf.Tensor;
let golden: Float32Array;

function meanMaxAbs(a: tf.Tensor, b: tf.Tensor): [number, number] {
  return tf.tidy(() => {
    const d = tf.abs(tf.sub(a, b));
    return [tf.mean(d).dataSync()[0], tf.max(d).dataSync()[0]];
  });
}

describe("the article's model", () => {
  before(async () => {
    await setup();
    sd = (await qb.io.loadTorch(fixture("float-checkpoint.ckpt"))) as Record<string, tf.Tensor>;
    x = (await qb.io.loadTorch(fixture("random_data.pt"))) as tf.Tensor;
    const raw = readFileSync(fixture("article_float_output.f32"));
    golden = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
  });
  after(() => {
    qb.io.disposeAll(sd);
    x.dispose();
  });

  it("float output matches PyTorch within 1e-4", () => {
    const model = new qb.examples.SmallModel();
    assert.deepEqual(model.loadStateDict(sd), { missingKeys: [], unexpectedKeys: [] });
    const y = model.eval().forward(x);
    assert.deepEqual(y.shape, [2, 100, 60]);
    const err = maxAbsDiff(y, golden);
    assert.ok(err <= 1e-4, `max abs error ${err}`);
    y.dispose();
    model.dispose();
  });

  it("the mul + sum form is float-identical to the Linear form (1e-5) and reports linear2's keys as unexpected", () => {
    const model = new qb.examples.SmallModel();
    model.loadStateDict(sd);
    const mulSum = new qb.examples.SmallModelMulSum(sd["linear2.weight"], sd["linear2.bias"]);
    const { missingKeys, unexpectedKeys } = mulSum.loadStateDict(sd, { strict: false });
    assert.deepEqual(missingKeys, []);
    assert.deepEqual(unexpectedKeys, ["linear2.weight", "linear2.bias"]);
    const a = model.eval().forward(x);
    const b = mulSum.eval().forward(x);
    assert.ok(maxAbsDiff(a, b) <= 1e-5, `max abs diff ${maxAbsDiff(a, b)}`);
    tf.dispose([a, b]);
    model.dispose();
    mulSum.dispose();
  });

  it("names ops as the reference toolchain's tables do", async () => {
    const model = new qb.examples.SmallModel();
    model.loadStateDict(sd);
    const calib = qb.prepare(model.eval(), x, {
      qconfigSetter: [qb.qconfig.calibration8bitWeight16bitActQconfigSetter],
    });
    const names = qb.analysis.preparedOps(calib).map((o) => o.info.name);
    for (const n of [
      "linear2",
      "layernorm.rsqrt",
      "layernorm.var_mean.pre_mean",
      "linear1",
      "linear3",
      "quant",
      "dequant",
    ]) {
      assert.ok(names.includes(n), `${n} in ${names.join(", ")}`);
    }
    const ops = new Map(qb.analysis.preparedOps(calib).map((o) => [o.info.name, o]));
    assert.equal(ops.get("linear3")?.output, null, "linear3 feeds only the DeQuantStub: high precision");
    assert.equal(ops.get("linear2")?.output?.dtype, qb.qint16);
    assert.equal(ops.get("linear2")?.info.flops, 200 * 256 * 60);
    calib.dispose();
    model.dispose();
  });

  it("calibrates all three int16 strategies; int16 cuts the error and the two int16 forms agree", async () => {
    const model = new qb.examples.SmallModel();
    model.loadStateDict(sd);
    const floatOut = model.eval().forward(x);
    const mulSum = new qb.examples.SmallModelMulSum(sd["linear2.weight"], sd["linear2.bias"]);
    mulSum.loadStateDict(sd, { strict: false });
    const int8 = await calibrated(model, x, [qb.qconfig.calibration8bitWeight16bitActQconfigSetter]);
    const int16 = await calibrated(model, x, [
      qb.qconfig.ModuleNameQconfigSetter({ linear2: qb.qconfig.getQconfig({ weightDtype: qb.qint16 }) }),
      qb.qconfig.calibration8bitWeight16bitActQconfigSetter,
    ]);
    const ms = await calibrated(mulSum, x, [qb.qconfig.calibration8bitWeight16bitActQconfigSetter]);
    const [o8, o16, oms] = [int8.forward(x), int16.forward(x), ms.forward(x)] as tf.Tensor[];
    const e8 = meanMaxAbs(o8, floatOut);
    const e16 = meanMaxAbs(o16, floatOut);
    const ems = meanMaxAbs(oms, floatOut);
    const between = meanMaxAbs(o16, oms);
    console.log(
      `# float vs calibrated, mean / max abs: weight int8 ${e8.map((v) => v.toExponential(2)).join(" / ")}; ` +
        `weight int16 ${e16.map((v) => v.toExponential(2)).join(" / ")}; mul+sum ${ems.map((v) => v.toExponential(2)).join(" / ")}; ` +
        `int16 Linear vs mul+sum ${between.map((v) => v.toExponential(2)).join(" / ")}`,
    );
    assert.ok(e8[0] > 0 && e16[0] > 0 && ems[0] > 0, "fake quantization changes the output");
    assert.ok(e16[0] < e8[0] / 2, "an int16 weight on linear2 at least halves the mean error");
    assert.ok(ems[0] < e8[0] / 2, "the mul + sum form gets the int16 gain too");
    assert.ok(between[0] < e16[0], "the two int16 forms are closer to each other than to float");
    const mulOp = qb.analysis.preparedOps(ms).find((o) => o.info.name === "linear2_mul");
    assert.equal(mulOp?.output?.dtype, qb.qint16);
    assert.equal(
      qb.analysis.preparedOps(ms).find((o) => o.info.name === "quant_linear2_weight")?.output?.axis,
      undefined,
      "weight enters per tensor",
    );
    tf.dispose([o8, o16, oms, floatOut]);
    [int8, int16, ms, model, mulSum].forEach((m) => m.dispose());
  });

  it("repeated forward and calibrate keep the tensor count", async () => {
    const model = new qb.examples.SmallModel();
    model.loadStateDict(sd);
    await assertNoLeak(() => model.eval().forward(x).dispose());
    const calib = qb.prepare(model, x, { qconfigSetter: [qb.qconfig.calibration8bitWeight16bitActQconfigSetter] });
    qb.setFakeQuantize(calib, qb.FakeQuantState.CALIBRATION);
    await assertNoLeak(() => qb.calibrate(calib, [x], { onProgress: () => {} }), 2);
    qb.setFakeQuantize(calib, qb.FakeQuantState.VALIDATION);
    await assertNoLeak(() => calib.forward(x).dispose());
    calib.dispose();
    model.dispose();
  });

  it("rejects an unknown march", async () => {
    await assertThrows(() => qb.setMarch("nash-x" as qb.March), /unknown march 'nash-x'/, /March\.NASH_M/);
  });
});
