/**
 * The mixed-precision planner: every plan it returns passes the march's rules and is reproduced
 * by its own setter; it is deterministic; it does no worse than Horizon-style top-k promotion at
 * the same latency; budgets pick a point or say what is achievable.
 */
import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import * as qb from "../src";
import { fixture, setup } from "./helpers";
import { clearInterrupt, requestInterrupt } from "../src/util/interrupt";

let sd: Record<string, tf.Tensor>;
let x: tf.Tensor;
let model: qb.nn.Module;

/** Front point `i` realised: its setter and rewrites applied to `float`, prepared for the plan's march and calibrated on `data` (the caller disposes both). */
async function realised(
  plan: qb.analysis.MixedPrecisionPlan,
  i: number,
  data: tf.Tensor,
  float: qb.nn.Module,
): Promise<{ c: qb.nn.Module; m: qb.nn.Module }> {
  const { qconfigSetter, apply } = plan.setter(i);
  const m = apply(float);
  const c = qb.prepare(m.eval(), data, { qconfigSetter, warn: false, march: plan.march });
  qb.setFakeQuantize(c, qb.FakeQuantState.CALIBRATION);
  await qb.calibrate(c, [data], { onProgress: () => {} });
  qb.setFakeQuantize(c, qb.FakeQuantState.VALIDATION);
  return { c, m };
}

async function reproduce(
  plan: qb.analysis.MixedPrecisionPlan,
  i: number,
  data: tf.Tensor,
  float: qb.nn.Module,
): Promise<{ error: number; latency: number; violations: string[] }> {
  const { c, m } = await realised(plan, i, data, float);
  const error = tf.tidy(
    () => tf.mean(tf.abs(tf.sub(c.forward(data) as tf.Tensor, float.forward(data) as tf.Tensor))).dataSync()[0],
  );
  const violations = qb.march
    .checkModel(c, plan.march)
    .violations.filter((v) => v.kind === "rule")
    .map((v) => v.message);
  const latency = qb.march.perf(qb.export(c, data)).latencyMs;
  c.dispose();
  if (m !== float) m.dispose();
  return { error, latency, violations };
}

describe("mixed-precision planner", { timeout: 300000 }, () => {
  before(async () => {
    await setup();
    sd = (await qb.io.loadTorch(fixture("float-checkpoint.ckpt"))) as Record<string, tf.Tensor>;
    x = (await qb.io.loadTorch(fixture("random_data.pt"))) as tf.Tensor;
    model = new qb.examples.SmallModel();
    model.loadStateDict(sd);
    model.eval();
  });
  after(() => {
    qb.io.disposeAll(sd);
    x.dispose();
    model.dispose();
  });

  for (const march of [qb.March.NASH_E, qb.March.NASH_M, qb.March.NASH_P]) {
    it(`${march}: every front point passes the rules and its setter reproduces its error and latency`, async () => {
      const plan = await qb.analysis.planMixedPrecision(model, [x], {
        march,
        base: qb.qconfig.calibration8bitWeight16bitActQconfigSetter,
        onProgress: () => {},
      });
      assert.ok(plan.rows.length >= 2, plan.text);
      assert.ok(plan.evaluations <= 20, `${plan.evaluations} evaluations (default budget: at most 20)`);
      for (let i = 0; i < plan.rows.length; i++) {
        const r = await reproduce(plan, i, x, model);
        assert.deepEqual(r.violations, [], `point ${i}: ${plan.rows[i].choices}`);
        assert.ok(
          Math.abs(r.error - plan.rows[i].measured_error) <= 1e-6 * plan.rows[i].measured_error,
          `point ${i}: error ${r.error} vs ${plan.rows[i].measured_error}`,
        );
        assert.ok(
          Math.abs(r.latency - plan.rows[i].latency_ms) <= 1e-9,
          `point ${i}: latency ${r.latency} vs ${plan.rows[i].latency_ms}`,
        );
      }
      // the front is a front: error falls as latency rises
      for (let i = 1; i < plan.rows.length; i++)
        assert.ok(
          plan.rows[i].latency_ms >= plan.rows[i - 1].latency_ms &&
            plan.rows[i].measured_error <= plan.rows[i - 1].measured_error,
        );
      console.log(`# ${march}: ${plan.caption}`);
    });
  }

  it("never throws on a legal request: default options on every march (the article model), every plan legal once realised", async () => {
    for (const march of [qb.March.NASH_E, qb.March.NASH_M, qb.March.NASH_P]) {
      const plan = await qb.analysis.planMixedPrecision(model, [x], { march, onProgress: () => {} });
      assert.deepEqual(plan.refused, [], `${march}: plans the chip refused once realised`);
      assert.ok(plan.rows.length >= 1, `${march}: ${plan.caption}`);
      for (let i = 0; i < plan.rows.length; i++)
        assert.deepEqual(
          (await reproduce(plan, i, x, model)).violations,
          [],
          `${march} point ${i}: ${plan.rows[i].choices}`,
        );
    }
  });

  it("default options on every model of the ONNX test zoo (NASH_M): legal plans, reproduced by their setters", async (t) => {
    const dir = path.join(__dirname, "..", "..", "test", "fixtures", "onnx");
    const index = JSON.parse(readFileSync(path.join(dir, "index.json"), "utf8")) as Record<string, { input: number[] }>;
    const files = Object.keys(index).filter((f) => f.endsWith(".onnx"));
    const names = [...new Set(files.map((f) => f.replace(/_opset\d+\.onnx$/, "")))];
    assert.ok(names.length >= 6, `zoo: ${names}`);
    for (const name of names) {
      const file = files.find((f) => f.startsWith(`${name}_opset`)) as string;
      const m = await qb.io.loadOnnx(path.join(dir, file));
      const data = tf.randomNormal(index[file].input, 0, 1, "float32", 41);
      const t0 = performance.now();
      const plan = await qb.analysis.planMixedPrecision(m, [data], {
        march: qb.March.NASH_M,
        evaluations: 6,
        onProgress: () => {},
      });
      t.diagnostic(
        `${name}: ${plan.rows.length} plans, ${plan.evaluations} evaluations, ${((performance.now() - t0) / 1000).toFixed(1)} s`,
      );
      assert.deepEqual(plan.refused, [], `${name}: plans the chip refused once realised`);
      const last = plan.rows.length - 1;
      for (const i of new Set([0, last]))
        assert.deepEqual(
          (await reproduce(plan, i, data, m)).violations,
          [],
          `${name} point ${i}: ${plan.rows[i].choices}`,
        );
      data.dispose();
      m.dispose();
    }
  });

  it("ranks by the output cosine when asked: each front point's error is 1 − the cosine its setter reproduces", async () => {
    const plan = await qb.analysis.planMixedPrecision(model, [x], {
      march: qb.March.NASH_P,
      base: qb.qconfig.calibration8bitWeight16bitActQconfigSetter,
      metric: "Cosine",
      evaluations: 6,
      onProgress: () => {},
    });
    assert.match(plan.caption, /\(1 − cosine\)/);
    for (let i = 0; i < plan.rows.length; i++) {
      const { c, m } = await realised(plan, i, x, model);
      const cos = tf.tidy(() => {
        const a = tf.reshape(model.forward(x) as tf.Tensor, [-1]);
        const b = tf.reshape(c.forward(x) as tf.Tensor, [-1]);
        return tf.div(tf.sum(tf.mul(a, b)), tf.mul(tf.norm(a), tf.norm(b))).dataSync()[0];
      });
      // (a float32 cosine near 1 carries ~6e-8 of rounding)
      assert.ok(
        Math.abs(plan.rows[i].measured_error - (1 - cos)) <= 2e-7,
        `point ${i}: ${plan.rows[i].measured_error} vs 1 − ${cos}`,
      );
      c.dispose();
      if (m !== model) m.dispose();
    }
    await assert.rejects(
      qb.analysis.planMixedPrecision(model, [x], { march: qb.March.NASH_P, metric: "KL" as "L1" }),
      /metric 'KL'; pass L1, MSE, Cosine or Top1/,
    );
  });

  it("ranks by top-1 agreement when asked: each front point's error is the share of rows whose class changed", async () => {
    const plan = await qb.analysis.planMixedPrecision(model, [x], {
      march: qb.March.NASH_M,
      metric: "Top1",
      evaluations: 4,
      onProgress: () => {},
    });
    assert.match(plan.caption, /share of samples whose top-1 class changed/);
    const i = plan.rows.length - 1;
    const { c, m } = await realised(plan, i, x, model);
    // the share of rows (all axes but the classes) whose argmax moved, counted here by hand
    const f = (model.forward(x) as tf.Tensor).arraySync() as number[][][];
    const q = (c.forward(x) as tf.Tensor).arraySync() as number[][][];
    const argmax = (r: number[]) => r.indexOf(Math.max(...r));
    let changed = 0;
    let rows = 0;
    f.forEach((a, n) => a.forEach((r, t) => ((rows += 1), (changed += argmax(r) === argmax(q[n][t]) ? 0 : 1))));
    assert.ok(
      Math.abs(plan.rows[i].measured_error - changed / rows) <= 1e-6,
      `${plan.rows[i].measured_error} vs ${changed}/${rows}`,
    );
    c.dispose();
    if (m !== model) m.dispose();
  });

  it("takes a Dataset (its batches in memory for the search) and frees them", async () => {
    const before = tf.memory().numTensors;
    const seen: qb.display.Progress[] = [];
    // the planner passes its march to what it runs: the global chip stays the caller's throughout
    qb.setMarch(qb.March.NASH_M);
    const globals = new Set<string | null>();
    const plan = await qb.analysis.planMixedPrecision(model, qb.data.fromTensors([x]), {
      march: qb.March.NASH_P,
      evaluations: 3,
      onProgress: (p) => (seen.push(p), globals.add(qb.march.getMarch())),
    });
    assert.deepEqual([...globals], [qb.March.NASH_M]);
    assert.equal(plan.march, qb.March.NASH_P);
    assert.ok(plan.rows.length >= 1);
    // the bar ends full, whatever the budget left unmeasured
    const last = seen[seen.length - 1];
    assert.equal(last.done, last.total);
    assert.equal(tf.memory().numTensors, before);
  });

  it("cpuFallback: may keep the tail in float on the CPU, costed at the march's CPU rate, and the plan reproduces", async () => {
    await assert.rejects(
      qb.analysis.planMixedPrecision(model, [x], { march: qb.March.NASH_M, cpuFallback: -1 }),
      /cpuFallback -1; pass a whole number ≥ 0/,
    );
    await assert.rejects(
      qb.analysis.planMixedPrecision(model, [x], { march: qb.March.NASH_M, sensitivityBatches: 0 }),
      /sensitivityBatches 0; pass a whole number ≥ 1/,
    );
    const plan = await qb.analysis.planMixedPrecision(model, [x], {
      march: qb.March.NASH_M,
      cpuFallback: 2,
      onProgress: () => {},
    });
    const i = plan.rows.findIndex((r) => /:cpu/.test(r.choices));
    assert.ok(i >= 0, `no front point keeps an op on the CPU:\n${plan.text}`);
    const r = await reproduce(plan, i, x, model);
    assert.deepEqual(r.violations, []);
    assert.ok(Math.abs(r.error - plan.rows[i].measured_error) <= 1e-6 * plan.rows[i].measured_error);
    // the realised model: the tail ops are reported as CPU ops and costed by the CPU rate
    const { c } = await realised(plan, i, x, model);
    const cpu = qb.march
      .checkModel(c, plan.march)
      .violations.filter((v) => v.kind === "cpu")
      .map((v) => v.op);
    const listed = plan.rows[i].choices.split(" ").flatMap((c) => (c.endsWith(":cpu") ? [c.slice(0, -4)] : []));
    // every op of the tail is on the CPU, except what the chip takes in float anyway (the DeQuantStub)
    assert.deepEqual(cpu.sort(), listed.filter((op) => op !== "dequant").sort());
    assert.ok(cpu.length > 0);
    const p = qb.march.perf(qb.export(c, x));
    const params = qb.march.marchSpec(plan.march).perf;
    for (const o of p.ops.filter((o) => cpu.includes(o.op))) {
      assert.equal(o.unit, "cpu", o.op);
      const want =
        1e6 * (params.opOverheadSeconds + o.elementOps / params.cpuOpsPerSecond + o.bytes / params.bytesPerSecond);
      assert.ok(Math.abs(o.timeUs - want) <= 1e-9 * want, `${o.op}: ${o.timeUs} vs ${want}`);
    }
    assert.ok(Math.abs(p.latencyMs - plan.rows[i].latency_ms) <= 1e-9 * p.latencyMs);
    // saved and loaded, the choice survives
    const saved = qb.analysis.loadPlan(plan.toJSON(i));
    assert.deepEqual(
      Object.keys(saved.saved.choices)
        .filter((k) => k.endsWith(".cpu"))
        .sort(),
      listed.map((o) => `${o}.cpu`).sort(),
    );
    c.dispose();
  });

  it("an interrupt names the planner, and the float model is untouched", async () => {
    const before = tf.tidy(() => (model.forward(x) as tf.Tensor).dataSync().slice(0, 8));
    let calls = 0;
    await assert.rejects(
      qb.analysis.planMixedPrecision(model, [x], {
        march: qb.March.NASH_M,
        onProgress: () => {
          if (++calls === 2) requestInterrupt();
        },
      }),
      (e: qb.QuantbookError) =>
        e instanceof qb.display.InterruptedError && /^planMixedPrecision\b.*interrupted by the user/.test(e.message),
    );
    clearInterrupt();
    assert.deepEqual(
      tf.tidy(() => (model.forward(x) as tf.Tensor).dataSync().slice(0, 8)),
      before,
    );
  });

  it("is deterministic, and does no worse than top-k promotion at the same latency (NASH_P, where top-k is legal)", async () => {
    const opts = {
      march: qb.March.NASH_P,
      base: qb.qconfig.calibration8bitWeight16bitActQconfigSetter,
      onProgress: () => {},
    };
    const a = await qb.analysis.planMixedPrecision(model, [x], opts);
    const b = await qb.analysis.planMixedPrecision(model, [x], opts);
    assert.deepEqual(a.rows, b.rows);
    for (const t of a.topk.filter((t) => t.legal)) {
      const within = a.rows.filter((r) => r.latency_ms <= t.latency_ms + 1e-12);
      assert.ok(within.length > 0, `a plan at or below top-${t.k}'s latency`);
      const best = Math.min(...within.map((r) => r.measured_error));
      assert.ok(best <= t.measured_error * (1 + 1e-9), `top-${t.k}: planner ${best} vs ${t.measured_error}`);
      console.log(
        `# top-${t.k} ${t.measured_error.toExponential(3)} at ${t.latency_ms.toFixed(4)} ms; planner ${best.toExponential(3)} (${(100 * (1 - best / t.measured_error)).toFixed(0)}% lower)`,
      );
    }
    // a budget picks a point, or names the closest achievable one
    const i = a.pick({ latencyMs: a.rows[a.rows.length - 1].latency_ms });
    assert.equal(a.rows[i].measured_error, Math.min(...a.rows.map((r) => r.measured_error)));
    assert.throws(
      () => a.pick({ latencyMs: 0 }),
      (e: qb.QuantbookError) => e.code === "INVALID_ARGUMENT" && /the fastest is point 0/.test(e.message),
    );
    assert.throws(
      () => a.pick({ error: 0 }),
      (e: qb.QuantbookError) => /the closest is point \d+/.test(e.message),
    );
    // the budget option picks the same point; an infeasible one names the closest achievable point
    const withBudget = await qb.analysis.planMixedPrecision(model, [x], {
      ...opts,
      budget: { latencyMs: a.rows[a.rows.length - 1].latency_ms },
    });
    assert.equal(withBudget.chosen, i);
    await assert.rejects(
      qb.analysis.planMixedPrecision(model, [x], { ...opts, budget: { error: 0 } }),
      /no plan reaches error 0; the closest is point \d+/,
    );
    assert.deepEqual(a.unplanned, []);
    const spec = a.plot() as { data: { values: { series: string }[] } };
    assert.ok(
      spec.data.values.some((v) => v.series === "top-k promotion") &&
        spec.data.values.some((v) => v.series === "planner front"),
    );
  });

  it("plans an imported CNN within the rules, no worse than top-k promotion (MobileNetV3-Small from ONNX)", async () => {
    const m = await qb.io.loadOnnx(
      path.join(__dirname, "..", "..", "test", "fixtures", "onnx", "mobilenet_v3_opset13.onnx"),
    );
    const batches = [0, 1].map((s) => tf.randomNormal([1, 3, 32, 32], 0, 1, "float32", 30 + s));
    const t0 = performance.now();
    const plan = await qb.analysis.planMixedPrecision(m, batches, { march: qb.March.NASH_M, onProgress: () => {} });
    console.log(
      `# mobilenet_v3 (imported, ${qb.analysis.preparedOps(qb.prepare(m.eval(), batches[0], { qconfigSetter: [qb.qconfig.defaultCalibrationQconfigSetter], warn: false })).length} ops): ${plan.caption}; ${((performance.now() - t0) / 1000).toFixed(1)} s`,
    );
    for (const t of plan.topk.filter((t) => t.legal)) {
      const best = Math.min(
        ...plan.rows.filter((r) => r.latency_ms <= t.latency_ms + 1e-12).map((r) => r.measured_error),
      );
      assert.ok(best <= t.measured_error, `top-${t.k}: planner ${best} vs ${t.measured_error}`);
      console.log(
        `# CNN top-${t.k} ${t.measured_error.toExponential(3)}; planner at no more latency ${best.toExponential(3)} (${(100 * (1 - best / t.measured_error)).toFixed(0)}% lower)`,
      );
    }
    for (let i = 0; i < plan.rows.length; i += Math.max(1, Math.floor(plan.rows.length / 3))) {
      const r = await reproduce(plan, i, batches[0], m);
      assert.deepEqual(r.violations, []);
    }
    tf.dispose(batches);
    m.dispose();
  });
});
