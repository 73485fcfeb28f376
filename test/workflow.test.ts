import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import * as qb from "../src";
import { assertNoLeak, assertThrows, setup } from "./helpers";

class Gate extends qb.nn.Module {
  quant = new qb.nn.QuantStub();
  fc = new qb.nn.Linear(8, 4);
  sig = new qb.nn.Sigmoid();
  out = new qb.nn.Linear(4, 2);
  unused = new qb.nn.Linear(2, 2);
  dequant = new qb.nn.DeQuantStub();
  forward(x: tf.Tensor): tf.Tensor {
    const h = this.sig.forward(qb.F.mul(this.fc.forward(this.quant.forward(x)), 0.5, { name: "half" }));
    return this.dequant.forward(this.out.forward(h));
  }
}

function data(seed: number): tf.Tensor {
  return tf.randomNormal([16, 8], 0, 1, "float32", seed);
}

function prepared(setters: qb.qconfig.QconfigSetter[] = [qb.qconfig.calibration8bitWeight16bitActQconfigSetter]): Gate {
  qb.nn.manualSeed(7);
  const x = data(1);
  const m = qb.prepare(new Gate().eval(), x, { qconfigSetter: setters });
  x.dispose();
  return m;
}

function opsByName(m: Gate) {
  return new Map(qb.analysis.preparedOps(m).map((o) => [o.info.name, o]));
}

describe("prepare", () => {
  before(setup);

  it("names every op by module path, in execution order", () => {
    const m = prepared();
    assert.deepEqual(
      qb.analysis.preparedOps(m).map((o) => `${o.info.name}:${o.info.type}`),
      ["quant:QuantStub", "fc:Linear", "half:Mul", "sig:Sigmoid", "out:Linear", "dequant:DeQuantStub"],
    );
    const ops = opsByName(m);
    assert.deepEqual(ops.get("sig")?.info.inputs, [{ source: "half", shape: [16, 4] }]);
    assert.deepEqual(ops.get("out")?.info.consumers, ["dequant"]);
  });

  it("quantSummary lists each op's dtypes, scales and observer", async () => {
    const m = prepared();
    const before = qb.analysis.quantSummary(m).rows.find((r) => r.op === "fc");
    assert.deepEqual(before, {
      op: "fc",
      type: "Linear",
      inputs: "qint16",
      weight: "qint8",
      weight_scale: "(not calibrated)",
      output: "qint16",
      output_scale: "(not calibrated)",
      observer: "MSEObserver",
    });
    qb.setFakeQuantize(m, qb.FakeQuantState.CALIBRATION);
    const x = data(20);
    await qb.calibrate(m, [x], { onProgress: () => {} });
    const after = qb.analysis.quantSummary(m).rows.find((r) => r.op === "fc");
    assert.match(after?.weight_scale ?? "", /^per-channel\[4\] /);
    assert.match(after?.output_scale ?? "", /^\d\.\d{4}e?-?\d*$/);
    assert.equal(qb.analysis.quantSummary(m).rows.find((r) => r.op === "out")?.output, "float32");
    x.dispose();
  });

  it("applies the template: int8 per-channel weights, int16 activations, high-precision last GEMM", () => {
    const ops = opsByName(prepared());
    assert.equal(ops.get("fc")?.weight?.dtype, qb.qint8);
    assert.equal(ops.get("fc")?.weight?.axis, 0);
    assert.equal(ops.get("fc")?.output?.dtype, qb.qint16);
    assert.ok(ops.get("fc")?.output?.observer instanceof qb.quant.MSEObserver);
    assert.equal(ops.get("out")?.output, null, "a GEMM feeding only the DeQuantStub keeps a float output");
    assert.equal(ops.get("dequant")?.output, null);
  });

  it("earlier setters win, field by field", () => {
    const ops = opsByName(
      prepared([
        qb.qconfig.ModuleNameQconfigSetter({ fc: qb.qconfig.getQconfig({ weightDtype: qb.qint16 }) }),
        qb.qconfig.ModuleNameQconfigSetter({
          fc: qb.qconfig.getQconfig({ weightDtype: qb.qint8, outDtype: qb.qint8 }),
        }),
        qb.qconfig.FixedScaleQconfigSetter({ half: 7 / 32767 }),
        qb.qconfig.calibration8bitWeight16bitActQconfigSetter,
      ]),
    );
    assert.equal(ops.get("fc")?.weight?.dtype, qb.qint16, "the first setter decided the weight");
    assert.equal(ops.get("fc")?.output?.dtype, qb.qint8, "the second setter decided the output, the template nothing");
    assert.equal(ops.get("half")?.output?.scale()?.[0], 7 / 32767);
    assert.equal(ops.get("sig")?.output?.dtype, qb.qint16);
  });

  it("refuses unknown module names and op types, suggesting near names", async () => {
    await assertThrows(
      () =>
        prepared([
          qb.qconfig.ModuleNameQconfigSetter({ fcc: qb.qconfig.getQconfig({ weightDtype: qb.qint16 }) }),
          qb.qconfig.calibration8bitWeight16bitActQconfigSetter,
        ]),
      /ModuleNameQconfigSetter: no op or module 'fcc'; nearest: 'fc'/,
    );
    await assertThrows(
      () => prepared([qb.qconfig.OpTypeQconfigSetter({ Conv2d: {} })]),
      /OpTypeQconfigSetter: no op of type 'Conv2d'; nearest: /,
    );
    await assertThrows(
      () => qb.qconfig.getQconfig({ weightdtype: qb.qint16 } as never),
      /unknown option 'weightdtype'/,
    );
    await assertThrows(
      () => qb.qconfig.getQconfig({ weightDtype: "int16" as never }),
      /weightDtype is "int16"; pass qb.qint8 or qb.qint16 as weightDtype/,
    );
    await assertThrows(
      () => qb.qconfig.getQconfig({ outDtype: qb.quant.qint32 }),
      /outDtype is qint32; pass qb.qint8 or qb.qint16 as outDtype/,
    );
    await assertThrows(
      () => qb.qconfig.getQconfig({ observer: new qb.quant.MSEObserver({ dtype: qb.qint8 }) as never }),
      /the class, not an instance/,
    );
    assert.deepEqual(
      qb.qconfig.getQconfig({ weightDtype: "qint16" }),
      { weight: { dtype: qb.qint16 } },
      "names are accepted too",
    );
  });

  it("leaves the float model usable and unchanged", () => {
    qb.nn.manualSeed(7);
    const float = new Gate().eval();
    const x = data(2);
    const y0 = float.forward(x);
    const m = qb.prepare(float, x, { qconfigSetter: [qb.qconfig.calibration8bitWeight16bitActQconfigSetter] });
    m.fc.weight.assign(tf.zerosLike(m.fc.weight));
    const y1 = float.forward(x);
    assert.deepEqual(Array.from(y1.dataSync()), Array.from(y0.dataSync()));
    tf.dispose([x, y0, y1]);
  });

  it("reports float inputs without a QuantStub, and unused modules", () => {
    class NoStub extends qb.nn.Module {
      fc = new qb.nn.Linear(8, 4);
      spare = new qb.nn.ReLU();
      bias = tf.ones([4]);
      forward(x: tf.Tensor) {
        return qb.F.add(this.fc.forward(x), this.bias);
      }
    }
    const x = data(3);
    const m = qb.prepare(new NoStub().eval(), x, {
      qconfigSetter: [qb.qconfig.calibration8bitWeight16bitActQconfigSetter],
    });
    const report = qb.analysis.modelCheckResult(m);
    assert.deepEqual(report.floatInputs, [
      { op: "fc", input: 0, source: "<input:0>" },
      { op: "add", input: 1, source: "<float>" },
    ]);
    assert.deepEqual(report.unusedModules, ["spare"]);
    assert.match(report.text, /Float inputs not behind a QuantStub/);
    class Shared extends qb.nn.Module {
      quant = new qb.nn.QuantStub();
      fc = new qb.nn.Linear(8, 8);
      alias = this.fc; // the same module under a second name
      dequant = new qb.nn.DeQuantStub();
      forward(x: tf.Tensor) {
        return this.dequant.forward(this.fc.forward(this.fc.forward(this.quant.forward(x))));
      }
    }
    const shared = qb.analysis.modelCheckResult(
      qb.prepare(new Shared().eval(), x, { qconfigSetter: [qb.qconfig.calibration8bitWeight16bitActQconfigSetter] }),
    );
    assert.deepEqual(shared.sharedModules, [{ paths: ["fc", "alias"], calls: 2 }]);
    assert.match(shared.text, /fc, alias \(2 calls\)/);
    const gate = qb.analysis.modelCheckResult(prepared());
    assert.deepEqual(gate.sharedModules, []);
    assert.deepEqual(gate.unusedModules, ["unused"]);
    assert.deepEqual(gate.floatInputs, []);
    x.dispose();
  });

  it("prepare warns about a raw tf op between quantized ops and a missing QuantStub, not about constants", () => {
    class RawTanh extends qb.nn.Module {
      quant = new qb.nn.QuantStub();
      fc = new qb.nn.Linear(8, 4);
      bias = tf.ones([4]);
      forward(x: tf.Tensor) {
        return qb.F.add(this.fc.forward(tf.tanh(this.quant.forward(x))), this.bias);
      }
    }
    const x = data(3);
    const warnings: string[] = [];
    const orig = console.warn;
    console.warn = (m: string) => warnings.push(m);
    try {
      const m = qb.prepare(new RawTanh().eval(), x, {
        qconfigSetter: [qb.qconfig.calibration8bitWeight16bitActQconfigSetter],
      });
      assert.deepEqual(qb.analysis.modelCheckResult(m).untracedInputs, [{ op: "fc", input: 0 }]);
      assert.equal(warnings.length, 1);
      assert.match(
        warnings[0],
        /^prepare\(RawTanh\): 1 op input\(s\) come from a raw tf op, which cuts the traced graph \(fc input 0\) — use the qb\.F \/ qb\.nn equivalent\. The whole report: qb\.analysis\.modelCheckResult/,
      );
      assert.doesNotMatch(warnings[0], /add input 1/, "a module's own constant is not a finding");
      qb.prepare(new RawTanh().eval(), x, {
        qconfigSetter: [qb.qconfig.calibration8bitWeight16bitActQconfigSetter],
        warn: false,
      });
      assert.equal(warnings.length, 1, "{ warn: false } silences it");
      qb.prepare(new Gate().eval(), x, { qconfigSetter: [qb.qconfig.calibration8bitWeight16bitActQconfigSetter] });
      assert.equal(warnings.length, 1, "a clean model gets no warning");
    } finally {
      console.warn = orig;
      x.dispose();
    }
  });
});

describe("fake-quant states", () => {
  before(setup);

  it("CALIBRATION observes without quantizing; VALIDATION quantizes with frozen scales", async () => {
    qb.nn.manualSeed(7);
    const float = new Gate().eval();
    const m = prepared();
    const x = data(4);
    qb.setFakeQuantize(m, qb.FakeQuantState.CALIBRATION);
    const yf = float.forward(x);
    const yc = m.forward(x);
    assert.deepEqual(Array.from(yc.dataSync()), Array.from(yf.dataSync()), "calibration output is float");
    await qb.calibrate(m, [x, data(5)], { onProgress: () => {} });
    const fcOut = opsByName(m).get("fc")?.output;
    const scale = fcOut?.scale()?.[0];
    qb.setFakeQuantize(m, qb.FakeQuantState.VALIDATION);
    const yv = m.forward(x);
    assert.ok(tf.max(tf.abs(tf.sub(yv, yf))).dataSync()[0] > 0, "validation output is fake-quantized");
    m.forward(data(6));
    assert.equal(fcOut?.scale()?.[0], scale, "scales stay frozen in VALIDATION");
    qb.setFakeQuantize(m, qb.FakeQuantState.FLOAT);
    assert.deepEqual(Array.from(m.forward(x).dataSync()), Array.from(yf.dataSync()));
  });

  it("enforces the order and modes of states with clear errors", async () => {
    const m = prepared();
    const x = data(7);
    await assertThrows(
      () => qb.setFakeQuantize(m, qb.FakeQuantState.VALIDATION),
      /VALIDATION/,
      /no scale yet/,
      /calibrate/,
    );
    await assertThrows(() => qb.calibrate(m, [x]), /calibrate: the model is in FLOAT state/, /CALIBRATION/);
    await assertThrows(() => qb.setFakeQuantize(m, qb.FakeQuantState.QAT), /QAT/, /model\.train\(\)/);
    m.train();
    await assertThrows(() => qb.setFakeQuantize(m, qb.FakeQuantState.CALIBRATION), /training mode/, /model\.eval\(\)/);
    m.eval();
    qb.setFakeQuantize(m, qb.FakeQuantState.CALIBRATION);
    m.train();
    await assertThrows(() => m.forward(x), /CALIBRATION state but in training mode/);
    m.eval();
    await assertThrows(
      () => qb.setFakeQuantize(new Gate(), qb.FakeQuantState.CALIBRATION),
      /not prepared/,
      /qb\.prepare/,
    );
    await assertThrows(() => qb.calibrate(m, 5 as never), /batches must be an array/);
    x.dispose();
  });

  it("NaN in calibration data names the op and leaves observers as they were", async () => {
    const m = prepared();
    qb.setFakeQuantize(m, qb.FakeQuantState.CALIBRATION);
    await qb.calibrate(m, [data(8)], { onProgress: () => {} });
    const before = [...opsByName(m).values()].map((o) => o.output?.snapshot());
    const bad = tf.tidy(() => data(9).mul(tf.tensor([NaN, 1, 1, 1, 1, 1, 1, 1])));
    await assertThrows(
      () => qb.calibrate(m, [data(10), bad]),
      /batch 1 failed/,
      /^calibrate: .*quant: values are NaN/,
      /observers are as before/,
    );
    const after = [...opsByName(m).values()].map((o) => o.output?.snapshot());
    assert.deepEqual(
      after.map((s) => s?.batches),
      before.map((s) => (s ? s.batches + 1 : undefined)),
      "only the good batch counted",
    );
    bad.dispose();
  });

  it("an op that did not run during tracing is an error naming it", async () => {
    class Branchy extends qb.nn.Module {
      quant = new qb.nn.QuantStub();
      forward(x: tf.Tensor) {
        const h = this.quant.forward(x);
        return x.shape[0] > 1 ? qb.F.relu(h) : qb.F.sigmoid(h);
      }
    }
    const m = qb.prepare(new Branchy().eval(), tf.ones([2, 2]), {
      qconfigSetter: [qb.qconfig.calibration8bitWeight16bitActQconfigSetter],
    });
    await assertThrows(
      () => m.forward(tf.ones([1, 2])),
      /sigmoid \(Sigmoid\): this op did not run when prepare\(\) traced/,
      /re-run prepare/,
    );
  });

  it("forward and calibrate do not leak tensors", async () => {
    const m = prepared();
    const x = data(11);
    qb.setFakeQuantize(m, qb.FakeQuantState.CALIBRATION);
    await assertNoLeak(() => qb.calibrate(m, [x], { onProgress: () => {} }));
    qb.setFakeQuantize(m, qb.FakeQuantState.VALIDATION);
    await assertNoLeak(() => m.forward(x).dispose());
    x.dispose();
  });
});

describe("QAT", () => {
  before(setup);

  it("trains through fake quantization and lowers the loss", async () => {
    const m = prepared([qb.qconfig.qat8bitWeight16bitActQconfigSetter]);
    const x = data(12);
    qb.setFakeQuantize(m, qb.FakeQuantState.CALIBRATION);
    await qb.calibrate(m, [x], { onProgress: () => {} });
    m.train();
    qb.setFakeQuantize(m, qb.FakeQuantState.QAT);
    const target = tf.tidy(() => tf.ones([16, 2]).mul(0.3));
    const opt = tf.train.adam(0.05);
    const w0 = m.fc.weight.dataSync().slice();
    const before = tf.memory().numTensors;
    const losses = await qb.qat.train(m, opt, [[x, target]], { epochs: 15, onProgress: () => {} });
    assert.ok(losses[14] < losses[0] * 0.5, `loss ${losses[0]} -> ${losses[14]}`);
    assert.notDeepEqual(Array.from(m.fc.weight.dataSync()), Array.from(w0), "gradients reached the first layer");
    const grown = tf.memory().numTensors - before;
    assert.ok(grown <= 20, `QAT must not leak per step (optimizer slots only), grew by ${grown}`);
    m.eval();
    await assertThrows(() => qb.qat.step(m, opt, x, target), /forward: the model is in QAT state but in eval mode/);
    tf.dispose([x, target]);
  });
});
