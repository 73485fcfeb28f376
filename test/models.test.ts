/**
 * Real deployment models written with qb.nn: torchvision's ResNet-18 and MobileNetV3-Small,
 * checked against torchvision (same state-dict keys and shapes, float output within 1e-4), then
 * run through the whole workflow: calibrate, sensitivity, checkModel, export, convert, perf.
 */
import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { before, describe, it } from "node:test";
import * as qb from "../src";
import { uniforms } from "../src/examples/deterministicInit";
import { setup } from "./helpers";

const golden = JSON.parse(
  readFileSync(path.join(__dirname, "..", "..", "test", "fixtures", "models_golden.json"), "utf8"),
) as {
  input: number[];
  models: Record<string, { keys: [string, number[]][]; output: number[] }>;
};

const MODELS: [string, () => qb.nn.Module][] = [
  ["resnet18", () => new qb.examples.ResNet18()],
  ["mobilenet_v3_small", () => new qb.examples.MobileNetV3Small()],
];

function goldenInput(): tf.Tensor {
  const n = golden.input.reduce((a, b) => a * b, 1);
  return tf.tensor(
    Float32Array.from(uniforms("input", n), (u) => 2 * u - 1),
    golden.input,
  );
}

describe("torchvision models written with qb.nn", { timeout: 300000 }, () => {
  before(setup);

  for (const [name, make] of MODELS) {
    it(`${name}: state-dict keys and shapes are torchvision's, float output within 1e-4 of PyTorch`, () => {
      const model = qb.examples.deterministicInit(make().eval());
      const sd = model.stateDict();
      const ours = Object.entries(sd)
        .filter(([, t]) => t.dtype === "float32")
        .map(([k, t]) => [k, t.shape]);
      assert.deepEqual(ours, golden.models[name].keys);
      tf.dispose(Object.values(sd));
      const x = goldenInput();
      const y = model.forward(x) as tf.Tensor;
      const want = tf.tensor(golden.models[name].output, y.shape);
      const rel = tf.tidy(() => tf.max(tf.abs(tf.sub(y, want))).dataSync()[0] / tf.max(tf.abs(want)).dataSync()[0]);
      console.log(`# ${name}: max |ours - torch| / max |torch| = ${rel.toExponential(2)}`);
      assert.ok(rel < 1e-4, `${name}: relative error ${rel}`);
      tf.dispose([x, y, want]);
      model.dispose();
    });
  }

  for (const [name, make] of MODELS) {
    it(`${name}: calibrate, sensitivity, checkModel, export, convert, perf`, async () => {
      qb.setMarch(qb.March.NASH_M);
      const float = qb.examples.deterministicInit(make().eval());
      const batches = [0, 1].map((s) => tf.randomUniform([1, 3, 64, 64], -1, 1, "float32", s));
      const calib = qb.prepare(float, batches[0], {
        qconfigSetter: [qb.qconfig.calibration8bitWeight16bitActQconfigSetter],
      });
      qb.setFakeQuantize(calib, qb.FakeQuantState.CALIBRATION);
      await qb.calibrate(calib, batches, { onProgress: () => {} });
      qb.setFakeQuantize(calib, qb.FakeQuantState.VALIDATION);
      const before = tf.memory().numTensors;
      const qa = new qb.analysis.QuantAnalysis(float, calib, { onProgress: () => {} });
      const t0 = performance.now();
      const sens = qa.sensitivity({ data: batches[0] });
      const ms = performance.now() - t0;
      assert.ok(sens.rows.length > 20, `${name}: ${sens.rows.length} sensitivity rows`);
      assert.ok(
        sens.rows.every((r, i) => i === 0 || sens.rows[i - 1].value >= r.value),
        "worst first",
      );
      assert.equal(tf.memory().numTensors, before, "sensitivity leaves no tensors behind");
      const check = qb.march.checkModel(calib, qb.March.NASH_M);
      // int16 activations with int8 weights: every GEMM is allowed on NASH_M
      assert.deepEqual(
        check.violations.map((v) => v.message),
        [],
      );
      const ir = qb.export(calib, batches[0]);
      const hb = qb.convert(ir, qb.March.NASH_M);
      const fq = calib.forward(batches[1]) as tf.Tensor;
      const yi = hb.forward(batches[1]);
      const yf = float.forward(batches[1]) as tf.Tensor;
      const [intVsFq, fqVsFloat] = tf.tidy(() => [
        tf.mean(tf.abs(tf.sub(yi, fq))).dataSync()[0],
        tf.mean(tf.abs(tf.sub(fq, yf))).dataSync()[0],
      ]);
      console.log(
        `# ${name}: ${sens.rows.length} sensitivity rows in ${ms.toFixed(0)} ms; worst ${sens.rows[0].op_name} (${sens.rows[0].sensitive_type}); mean |int - fake-quant| ${intVsFq.toExponential(2)}, |fake-quant - float| ${fqVsFloat.toExponential(2)}`,
      );
      assert.ok(intVsFq < fqVsFloat, "the integer model is closer to the fake-quant model than that is to float");
      const p = qb.march.perf(hb);
      assert.ok(p.latencyMs > 0 && p.ops.length === ir.nodes.length);
      console.log(
        `# ${name}: ${ir.nodes.length} IR nodes, estimated ${p.latencyMs.toFixed(3)} ms on NASH_M (64x64 input)`,
      );
      tf.dispose([...batches, fq, yi, yf]);
      calib.dispose();
      float.dispose();
    });
  }
});
