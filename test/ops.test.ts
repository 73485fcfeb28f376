/**
 * The op registry, walked: every op type has a PyTorch golden case (float compute), a chip rule on
 * every march (or is reported "no rule known"), an integer kernel within one quantization step of
 * the fake-quant model, and no tensor leak.
 */
import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import * as qb from "../src";
import { OP_TYPES } from "../src/ops/opTypes";
import { checkOpDtypes } from "../src/march/check";
import { allOps, opTypes } from "../src/ops";
import { assertWithinOneStep, setup } from "./helpers";

import { constsOf, disposeConsts, golden, OneOp, RUNS, ten } from "./opCases";

function maxRelErr(got: tf.Tensor, want: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.div(tf.abs(tf.sub(got, want)), tf.add(tf.abs(want), 1))).dataSync()[0]);
}

describe("op registry", () => {
  before(setup);

  it("every registry op has a golden case, and every case names a registry op", () => {
    const covered = new Set(Object.values(RUNS).map(([type]) => type));
    const missing = opTypes().filter((t) => !covered.has(t) && t !== "QuantStub" && t !== "DeQuantStub");
    assert.deepEqual(missing, [], "ops without a PyTorch golden case");
    for (const c of golden.cases) assert.ok(RUNS[c.name], `golden case ${c.name} has no qb.F call in this test`);
    for (const [type] of Object.values(RUNS)) assert.ok(opTypes().includes(type), `${type} is not in the registry`);
  });

  for (const c of golden.cases) {
    it(`float: ${c.name} matches PyTorch`, () => {
      const [type, run] = RUNS[c.name];
      const xs = c.inputs.map(ten);
      const k = constsOf(c);
      const want = ten(c.output);
      const got = run(xs, k);
      assert.deepEqual(got.shape, c.output.shape, `${type} output shape`);
      const err = maxRelErr(got, want);
      assert.ok(err < 1e-5, `${c.name} (${type}): max |got - torch| / (1 + |torch|) = ${err}`);
      tf.dispose([...xs, want, got]);
      disposeConsts(k);
    });
  }

  it("every op has a chip rule on every march, or checkModel reports it as 'no rule known'", () => {
    for (const march of [qb.March.NASH_E, qb.March.NASH_M, qb.March.NASH_P]) {
      const spec = qb.march.marchSpec(march);
      for (const def of allOps()) {
        if (spec.ops[def.type] !== undefined) continue;
        const r = checkOpDtypes(
          [{ name: "x", type: def.type, module: "x", inputs: ["qint8"], output: "qint8" }],
          march,
        );
        assert.equal(r.violations[0]?.kind, "no-rule", `${march}: ${def.type} has no rule and is not reported`);
      }
    }
  });

  for (const dtype of ["qint8", "qint16"] as const) {
    it(`integer model within one step of fake-quant, every op, ${dtype} activations`, async () => {
      qb.setMarch(qb.March.NASH_P); // accepts every dtype pair, so each op is converted as configured
      const setter =
        dtype === "qint8"
          ? qb.qconfig.defaultCalibrationQconfigSetter
          : qb.qconfig.calibration8bitWeight16bitActQconfigSetter;
      const problems: string[] = [];
      for (const c of golden.cases) {
        const [type, run] = RUNS[c.name];
        const xs = c.inputs.map(ten);
        const k = constsOf(c);
        const model = new OneOp(xs.length, run, k);
        const calib = qb.prepare(model.eval(), xs, { qconfigSetter: [setter], warn: false });
        qb.setFakeQuantize(calib, qb.FakeQuantState.CALIBRATION);
        await qb.calibrate(calib, [xs]);
        qb.setFakeQuantize(calib, qb.FakeQuantState.VALIDATION);
        const ir = qb.export(calib, xs);
        const hb = qb.convert(ir, qb.March.NASH_P);
        const fq = calib.forward(...xs);
        const y = hb.forward(...xs);
        const node = ir.nodes.find((n) => n.type === type) as (typeof ir.nodes)[number];
        const scale = node.output.quant.scale;
        if (scale === null) {
          // a high-precision output (a GEMM before the DeQuantStub): compare relative to the values
          const err = maxRelErr(y, fq);
          if (err > 1e-3) problems.push(`${c.name}: float output differs by ${err}`);
        } else {
          try {
            assertWithinOneStep(y.dataSync(), fq.dataSync(), scale[0] * (1 + 1e-6), 0.999);
          } catch (e) {
            problems.push(`${c.name} (${type}): ${(e as Error).message}`);
          }
        }
        tf.dispose([...xs, fq, y]);
        calib.dispose();
        disposeConsts(k);
      }
      assert.deepEqual(problems, []);
    });
  }

  it("no op leaks tensors", () => {
    for (const c of golden.cases) {
      const [, run] = RUNS[c.name];
      const xs = c.inputs.map(ten);
      const k = constsOf(c);
      tf.dispose(run(xs, k)); // warm up (first calls may allocate backend state)
      const before = tf.memory().numTensors;
      for (let i = 0; i < 3; i++) tf.dispose(run(xs, k));
      assert.equal(tf.memory().numTensors - before, 0, `${c.name}: tensors leaked over 3 calls`);
      tf.dispose(xs);
      disposeConsts(k);
    }
  });
});

describe("op types", () => {
  it("the registry defines exactly the op types of the OP_TYPES union (a typo anywhere is a compile error)", () => {
    assert.deepEqual([...opTypes()].sort(), [...OP_TYPES].sort());
  });
});
