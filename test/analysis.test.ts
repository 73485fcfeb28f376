import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import * as qb from "../src";
import { errors } from "../src/messages";
import {
  assertNoLeak,
  assertThrows,
  assertThrowsError,
  calibrated,
  fixture,
  maxAbsDiff,
  readJson,
  setup,
} from "./helpers";

let sd: Record<string, tf.Tensor>;
let x: tf.Tensor;
let model: qb.examples.SmallModel;

const quiet = { onProgress: () => {} };

describe("QuantAnalysis on the article model", () => {
  let outDir: string;
  before(async () => {
    await setup();
    sd = (await qb.io.loadTorch(fixture("float-checkpoint.ckpt"))) as Record<string, tf.Tensor>;
    x = (await qb.io.loadTorch(fixture("random_data.pt"))) as tf.Tensor;
    model = new qb.examples.SmallModel();
    model.loadStateDict(sd);
    model.eval();
    outDir = mkdtempSync(path.join(tmpdir(), "qb-qa-"));
  });
  after(() => {
    qb.io.disposeAll(sd);
    x.dispose();
    model.dispose();
    rmSync(outDir, { recursive: true });
  });

  it("ranks linear2's int8 weight in the top three, and an int16 weight more than halves its L1", async () => {
    const int8 = await calibrated(model, x, [qb.qconfig.calibration8bitWeight16bitActQconfigSetter]);
    const qa = new qb.analysis.QuantAnalysis(model, int8, { outDir });
    const table = qa.sensitivity({ data: x, ...quiet });
    const rank = table.rows.findIndex((r) => r.op_name === "linear2" && r.sensitive_type === "weight");
    assert.ok(rank >= 0 && rank < 3, `linear2 weight ranks ${rank + 1}`);
    const l1Int8 = table.rows[rank].value;
    assert.equal(table.rows[rank].quant_dtype, "qint8");
    assert.match(table.rows[rank].flops, /^3072000\(\d+\.\d\d%\)$/);
    const df = table.toDataFrame();
    assert.deepEqual(df.columns, ["op_name", "sensitive_type", "op_type", "L1", "quant_dtype", "flops"]);
    assert.ok(existsSync(path.join(outDir, "L1_sensitive_ops.txt")));

    const int16 = await calibrated(model, x, [
      qb.qconfig.ModuleNameQconfigSetter({ linear2: qb.qconfig.getQconfig({ weightDtype: qb.qint16 }) }),
      qb.qconfig.calibration8bitWeight16bitActQconfigSetter,
    ]);
    const t16 = new qb.analysis.QuantAnalysis(model, int16).sensitivity({ data: x, ...quiet });
    const row16 = t16.rows.find((r) => r.op_name === "linear2" && r.sensitive_type === "weight");
    assert.equal(row16?.quant_dtype, "qint16");
    console.log(
      `# linear2 weight L1: int8 ${l1Int8.toExponential(3)} (rank ${rank + 1}), int16 ${row16?.value.toExponential(3)}; sensitivity ${table.elapsedMs.toFixed(0)} ms`,
    );
    assert.ok((row16?.value as number) < l1Int8 / 2);
    int8.dispose();
    int16.dispose();
  });

  it("reusing float activations gives the same table as recomputing everything", async () => {
    const c = await calibrated(model, x, [qb.qconfig.calibration8bitWeight16bitActQconfigSetter]);
    const qa = new qb.analysis.QuantAnalysis(model, c);
    for (const metric of ["L1", "Cosine", "SQNR"] as const) {
      const fast = qa.sensitivity({ data: x, metric, ...quiet });
      const slow = qa.sensitivity({ data: x, metric, reuseFloat: false, ...quiet });
      assert.deepEqual(
        fast.rows.map((r) => `${r.op_name}/${r.sensitive_type}`),
        slow.rows.map((r) => `${r.op_name}/${r.sensitive_type}`),
        metric,
      );
      fast.rows.forEach((r, i) =>
        assert.ok(
          Math.abs(r.value - slow.rows[i].value) <= 1e-6 * Math.max(1, Math.abs(r.value)),
          `${metric} ${r.op_name}`,
        ),
      );
    }
    c.dispose();
  });

  it("statistics show linear2's weight extremes and variance, in both files", async () => {
    const c = await calibrated(model, x, [qb.qconfig.calibration8bitWeight16bitActQconfigSetter]);
    const st = new qb.analysis.QuantAnalysis(model, c, { outDir }).statistics({ data: x });
    const stats = readJson<{ linear2_weight: { min: number; max: number; var: number } }>(
      "article_stats.json",
    ).linear2_weight;
    const w = st.baseline.rows.find((r) => r["Mod Name"] === "linear2" && r.Attr === "weight");
    assert.ok(w);
    assert.equal(w.Min, Math.fround(stats.min));
    assert.equal(w.Max, Math.fround(stats.max));
    assert.ok(Math.abs(w.Var - stats.var) < 1e-4, `${w.Var} vs ${stats.var}`);
    assert.equal(w.Shape, "[60, 256]");
    const q = st.analysis.rows.find((r) => r["Mod Name"] === "linear2" && r.Attr === "weight");
    assert.equal(q?.Dtype, "qint8");
    assert.match(q?.Scale ?? "", /^per-channel\[60\]/);
    assert.deepEqual(
      st.analysis.rows.filter((r) => r["Mod Name"] === "linear2").map((r) => r.Attr),
      ["input", "weight", "bias", "output"],
    );
    assert.match(readFileSync(path.join(outDir, "baseline_statistic.txt"), "utf8"), /linear2 .*\| weight .*-41\.6590/);
    assert.ok(existsSync(path.join(outDir, "analysis_statistic.txt")));
    c.dispose();
  });

  it("per-layer comparison: the QuantStub is off by about half a step at most", async () => {
    const c = await calibrated(model, x, [qb.qconfig.calibration8bitWeight16bitActQconfigSetter]);
    const t = new qb.analysis.QuantAnalysis(model, c).comparePerLayer({ data: x });
    const stub = t.rows.find((r) => r.mod_name === "quant");
    // rounding costs at most half a step; the MSE range may clip the extremes by a hair more
    assert.ok(
      stub && stub.max_qscale_diff !== null && stub.max_qscale_diff >= 0.4 && stub.max_qscale_diff <= 0.51,
      `${stub?.max_qscale_diff}`,
    );
    const l3 = t.rows.find((r) => r.mod_name === "linear3");
    assert.equal(l3?.quant_dtype, "float32");
    assert.ok((l3?.Cosine ?? 0) > 0.99);
    assert.ok(t.toDataFrame().columns.includes("max_qscale_diff"));
    c.dispose();
  });

  it("finds the bad batch", async () => {
    const c = await calibrated(model, x, [qb.qconfig.calibration8bitWeight16bitActQconfigSetter]);
    const bad = tf.mul(x, 6); // far outside the calibrated ranges: clipped everywhere
    const t = new qb.analysis.QuantAnalysis(model, c).autoFindBadCase([x, bad, x]);
    assert.deepEqual(
      t.rows.map((r) => [r.output, r.worst_batch]),
      [[0, 1]],
    );
    bad.dispose();
    c.dispose();
  });

  it("rejects bad input with clear errors", async () => {
    const c = await calibrated(model, x, [qb.qconfig.calibration8bitWeight16bitActQconfigSetter]);
    const qa = new qb.analysis.QuantAnalysis(model, c);
    const wrong = tf.zeros([2, 100, 255]);
    await assertThrows(
      () => qa.sensitivity({ data: wrong }),
      /QuantAnalysis\.sensitivity: data input 0 has shape \[2,100,255\], expected \[2,100,256\], the shape the model was prepared with/,
    );
    await assertThrows(() => qa.statistics({ data: undefined as never }), /pass \{ data \}/);
    await assertThrows(() => qa.sensitivity({ data: x, metric: "L3" as never }), /unknown metric 'L3'/);
    const raw = qb.prepare(model, x, { qconfigSetter: [qb.qconfig.calibration8bitWeight16bitActQconfigSetter] });
    const points = qb.analysis
      .preparedOps(raw)
      .flatMap((o) => [...o.inputs, o.weight, o.output].flatMap((f) => (f === null ? [] : [f.where])));
    await assertThrowsError(
      () => new qb.analysis.QuantAnalysis(model, raw),
      errors.notCalibrated("QuantAnalysis", points),
    );
    await assertThrows(() => new qb.analysis.QuantAnalysis(model, model), /not prepared/);
    await assertThrowsError(
      () => qb.analysis.scaleExplorer(c, "linear9", { data: x }),
      errors.unknownName(
        "scaleExplorer",
        "op",
        "linear9",
        qb.analysis.preparedOps(c).map((o) => o.info.name),
      ),
    );
    await assertThrows(
      () => qb.analysis.scaleExplorer(c, "linear9", { data: x }),
      /nearest: 'linear1', 'linear2', 'linear3'/,
    );
    wrong.dispose();
    [c, raw].forEach((m) => m.dispose());
  });

  it("the cumulative-error curve: row k has the points of ops 0..k on; the last row is the whole quantized model", async () => {
    const c = await calibrated(model, x, [qb.qconfig.calibration8bitWeight16bitActQconfigSetter]);
    const qa = new qb.analysis.QuantAnalysis(model, c, { outDir });
    const curve = qa.cumulativeError({ data: x, ...quiet });
    const ops = qb.analysis.preparedOps(c);
    assert.deepEqual(
      curve.rows.map((r) => r.op_name),
      ops.map((o) => o.info.name),
    );
    // the last row: every point on = the validation model against float
    const whole = tf.tidy(
      () => tf.mean(tf.abs(tf.sub(c.forward(x) as tf.Tensor, model.forward(x) as tf.Tensor))).dataSync()[0],
    );
    const last = curve.rows[curve.rows.length - 1].value;
    assert.ok(Math.abs(last - whole) <= 1e-6 * whole, `last row ${last} vs the quantized model's L1 ${whole}`);
    // steps add up to the curve
    assert.ok(Math.abs(curve.rows.reduce((a, r) => a + r.step, 0) - last) <= 1e-9 * last);
    // row 0: only the first op's points (the QuantStub) on
    const stubOnly = tf.tidy(() => {
      const q = qb.quant.fakeQuantize(x, { scale: ops[0].output?.scale()?.[0] as number, dtype: qb.qint16 });
      return tf.mean(tf.abs(tf.sub(model.forward(q) as tf.Tensor, model.forward(x) as tf.Tensor))).dataSync()[0];
    });
    assert.ok(
      Math.abs(curve.rows[0].value - stubOnly) <= 1e-5 * stubOnly,
      `row 0 ${curve.rows[0].value} vs ${stubOnly}`,
    );
    assert.match(curve.caption, /the largest step is /);
    assert.ok(existsSync(path.join(outDir, "cumulative_error.txt")));
    const spec = curve.plot() as { mark: { type: string }; data: { values: unknown[] } };
    assert.equal(spec.mark.type, "line");
    assert.equal(spec.data.values.length, ops.length);
    await assertNoLeak(() => qa.cumulativeError({ data: x, ...quiet }), 1);
    c.dispose();
  });

  it("over several batches (an array, or a Dataset streamed from disk): the mean per point, Atol the largest, and no leak", async () => {
    const c = await calibrated(model, x, [qb.qconfig.calibration8bitWeight16bitActQconfigSetter]);
    const qa = new qb.analysis.QuantAnalysis(model, c, quiet);
    const x2 = tf.tidy(() => tf.mul(tf.reverse(x, 0), 1.5));
    const per = [x, x2].map((d) => qa.sensitivity({ data: d, metric: "L1" }).rows);
    const key = (r: { op_name: string; sensitive_type: string }) => `${r.op_name}|${r.sensitive_type}`;
    const both = qa.sensitivity({ batches: [x, x2], metric: "L1" });
    assert.equal(both.rows.length, per[0].length);
    for (const r of both.rows) {
      const [a, b] = per.map((rows) => rows.find((q) => key(q) === key(r))?.value as number);
      assert.ok(
        Math.abs(r.value - (a + b) / 2) <= 1e-12 * Math.max(1, Math.abs(r.value)),
        `${key(r)}: ${r.value} vs mean of ${a}, ${b}`,
      );
    }
    for (let i = 1; i < both.rows.length; i++) assert.ok(both.rows[i - 1].value >= both.rows[i].value, "worst first");
    // a Dataset gives the same table, as a promise, and frees what it read
    const ds = qb.data.fromTensors([x, x2]);
    qa.comparePerLayer({ data: x }); // (prepares the float baseline once: kept for the analysis's life)
    const before = tf.memory().numTensors;
    const streamed = await qa.sensitivity({ batches: ds, metric: "L1" });
    assert.deepEqual(
      streamed.rows.map((r) => [key(r), r.value]),
      both.rows.map((r) => [key(r), r.value]),
    );
    const layers = qa.comparePerLayer({ batches: [x, x2] });
    const single = [x, x2].map((d) => qa.comparePerLayer({ data: d }).rows);
    for (const r of layers.rows) {
      const [a, b] = single.map((rows) => rows.find((q) => q.mod_name === r.mod_name) as (typeof rows)[number]);
      assert.equal(r.Atol, Math.max(a.Atol, b.Atol), r.mod_name);
      assert.equal(r.base_min, Math.min(a.base_min, b.base_min), r.mod_name);
      assert.ok(Math.abs(r.Cosine - (a.Cosine + b.Cosine) / 2) <= 1e-12, r.mod_name);
    }
    const cum = await qa.cumulativeError({ batches: qb.data.fromTensors([x, x2]) });
    const cumSingle = [x, x2].map((d) => qa.cumulativeError({ data: d }).rows);
    cum.rows.forEach((r, i) =>
      assert.ok(
        Math.abs(r.value - (cumSingle[0][i].value + cumSingle[1][i].value) / 2) <= 1e-12 * Math.max(1, r.value),
        r.op_name,
      ),
    );
    assert.equal(tf.memory().numTensors, before);
    await assertThrows(
      () => qa.sensitivity({ data: x, batches: [x] } as unknown as { data: tf.Tensor }),
      /both \{ data \} and \{ batches \}/,
    );
    await assertThrows(() => qa.sensitivity({ batches: [] }), /pass \[batch, \.\.\.\] or a Dataset/);
    x2.dispose();
    c.dispose();
  });

  it("does not leak tensors", async () => {
    const c = await calibrated(model, x, [qb.qconfig.calibration8bitWeight16bitActQconfigSetter]);
    const qa = new qb.analysis.QuantAnalysis(model, c);
    await assertNoLeak(() => qa.sensitivity({ data: x, ...quiet }), 1);
    await assertNoLeak(() => qa.statistics({ data: x }), 1);
    await assertNoLeak(() => qa.comparePerLayer({ data: x }), 1);
    c.dispose();
  });
});

describe("sensitivity by hand on one Linear", () => {
  before(setup);

  it("a weight row equals the output error with only that weight fake-quantized", async () => {
    class One extends qb.nn.Module {
      quant = new qb.nn.QuantStub();
      fc = new qb.nn.Linear(8, 3);
      dequant = new qb.nn.DeQuantStub();
      forward(t: tf.Tensor) {
        return this.dequant.forward(this.fc.forward(this.quant.forward(t)));
      }
    }
    qb.nn.manualSeed(3);
    const m = new One().eval();
    const data = tf.randomNormal([5, 8], 0, 1, "float32", 4);
    const c = await calibrated(m, data, [qb.qconfig.defaultCalibrationQconfigSetter]);
    const rows = new qb.analysis.QuantAnalysis(m, c).sensitivity({ data, ...quiet }).rows;
    const weightRow = rows.find((r) => r.sensitive_type === "weight");
    // by hand: per-row int8 scales max|w| / 127.5, fake-quantized weight, float everything else
    const expected = tf.tidy(() => {
      const w = m.fc.weight;
      const scales = tf.div(tf.max(tf.abs(w), 1), 127.5).dataSync();
      const wq = qb.quant.fakeQuantize(w, { scale: scales, dtype: qb.qint8, axis: 0 });
      const yq = tf.add(tf.matMul(data, wq, false, true), m.fc.bias as tf.Tensor);
      const y = tf.add(tf.matMul(data, w, false, true), m.fc.bias as tf.Tensor);
      return tf.mean(tf.abs(tf.sub(yq, y))).dataSync()[0];
    });
    assert.ok(Math.abs((weightRow?.value as number) - expected) < 1e-7, `${weightRow?.value} vs ${expected}`);
    data.dispose();
    c.dispose();
  });
});

describe("sensitiveOpQconfigSetter", () => {
  before(setup);

  it("promotes the worst rows to int16", async () => {
    const m = new qb.examples.SmallModel();
    m.loadStateDict((await qb.io.loadTorch(fixture("float-checkpoint.ckpt"))) as Record<string, tf.Tensor>);
    const data = (await qb.io.loadTorch(fixture("random_data.pt"))) as tf.Tensor;
    const c = await calibrated(m, data, [qb.qconfig.calibration8bitWeight16bitActQconfigSetter]);
    const table = new qb.analysis.QuantAnalysis(m, c).sensitivity({ data, ...quiet });
    const top = table.rows[0];
    const promoted = qb.prepare(m, data, {
      qconfigSetter: [
        qb.qconfig.sensitiveOpQconfigSetter(table, { topk: 1, sensitiveType: "weight" }),
        qb.qconfig.calibration8bitWeight16bitActQconfigSetter,
      ],
    });
    const op = qb.analysis.preparedOps(promoted).find((o) => o.info.name === top.op_name);
    assert.equal(op?.weight?.dtype, qb.qint16);
    const weights = table.rows.filter((r) => r.sensitive_type === "weight").length;
    const byRatio = qb.prepare(m, data, {
      qconfigSetter: [
        qb.qconfig.sensitiveOpQconfigSetter(table, { ratio: 1, sensitiveType: "weight" }),
        qb.qconfig.calibration8bitWeight16bitActQconfigSetter,
      ],
    });
    assert.equal(qb.analysis.preparedOps(byRatio).filter((o) => o.weight?.dtype === qb.qint16).length, weights);
    await assertThrows(() => qb.qconfig.sensitiveOpQconfigSetter(table, {}), /exactly one of topk or ratio/);
    await assertThrows(() => qb.qconfig.sensitiveOpQconfigSetter(table, { ratio: 2 }), /ratio 2 must be in \(0, 1\]/);
    const other = new qb.examples.GatedMulSum(tf.ones([2, 256]) as tf.Tensor2D, tf.zeros([2]) as tf.Tensor1D);
    await assertThrows(
      () =>
        qb.prepare(other.eval(), data, { qconfigSetter: [qb.qconfig.sensitiveOpQconfigSetter(table, { topk: 1 })] }),
      new RegExp(`sensitiveOpQconfigSetter \\(was the table made on another model\\?\\): no op '${top.op_name}'`),
    );
    [c, promoted, byRatio, m, other].forEach((x) => x.dispose());
    data.dispose();
  });
});

describe("replaceLinearWithBroadcastMulSum", () => {
  before(setup);

  it("is float-identical, loads the original checkpoint and quantizes the weight per tensor", async () => {
    const ckpt = (await qb.io.loadTorch(fixture("float-checkpoint.ckpt"))) as Record<string, tf.Tensor>;
    const data = (await qb.io.loadTorch(fixture("random_data.pt"))) as tf.Tensor;
    const m = new qb.examples.SmallModel();
    const r = qb.transforms.replaceLinearWithBroadcastMulSum(m, "linear2");
    assert.deepEqual(
      r.loadStateDict(ckpt),
      { missingKeys: [], unexpectedKeys: [] },
      "strict load of the original keys",
    );
    m.loadStateDict(ckpt);
    const [a, b] = [m.eval().forward(data), r.eval().forward(data)];
    assert.ok(maxAbsDiff(a, b) <= 1e-5, `max diff ${maxAbsDiff(a, b)}`);
    assert.ok(m.linear2 instanceof qb.nn.Linear, "the original model is unchanged");
    const c = qb.prepare(r, data, { qconfigSetter: [qb.qconfig.calibration8bitWeight16bitActQconfigSetter] });
    const ops = new Map(qb.analysis.preparedOps(c).map((o) => [o.info.name, o]));
    for (const n of ["linear2.quant_weight", "linear2.quant_bias", "linear2.mul", "linear2.sum", "linear2.add"])
      assert.ok(ops.has(n), n);
    assert.equal(ops.get("linear2.quant_weight")?.output?.axis, undefined);
    assert.equal(ops.get("linear2.mul")?.output?.dtype, qb.qint16);
    assert.ok(qb.march.checkModel(c, qb.March.NASH_M).ok, "int16 mul + sum passes the NASH_M rules");
    await assertThrows(
      () => qb.transforms.replaceLinearWithBroadcastMulSum(m, "layernorm"),
      /'layernorm' is a LayerNorm, expected a Linear; its Linear modules are: linear1, linear2, linear3/,
      /linear1, linear2, linear3/,
    );
    await assertThrows(() => qb.transforms.replaceLinearWithBroadcastMulSum(m, "linear9"), /'linear9' is not a module/);
    tf.dispose([a, b, data]);
    qb.io.disposeAll(ckpt);
    [m, r, c].forEach((x) => x.dispose());
  });
});

describe("scale explorer: the mul-output trap", () => {
  before(setup);

  it("MSE zeroes most mul outputs and hurts the output; the fixed 7/32767 scale repairs it", async () => {
    const { model: g, data } = qb.examples.GatedMulSum.demo();
    const c = await calibrated(g, data, [qb.qconfig.calibration8bitWeight16bitActQconfigSetter]);
    const rows = qb.analysis.scaleExplorer(c, "gate_mul", { data });
    const mse = rows.find((r) => r.setting === "MSEObserver");
    const fixed = rows.find((r) => r.setting === "fixed 7/32767");
    assert.ok(mse && fixed);
    console.log(
      `# trap: MSE scale ${mse.scale.toExponential(3)} zeroes ${(100 * mse.zero_fraction).toFixed(1)}% (output L1 ${mse.output_l1.toExponential(3)}); ` +
        `7/32767 zeroes ${(100 * fixed.zero_fraction).toFixed(1)}% (output L1 ${fixed.output_l1.toExponential(3)})`,
    );
    assert.ok(mse.zero_fraction > 0.9);
    assert.ok(fixed.zero_fraction < 0.1);
    assert.ok(mse.output_l1 > 20 * fixed.output_l1);
    // the fix applied through a setter gives the same repaired output
    const fixedModel = await calibrated(g, data, [
      qb.qconfig.FixedScaleQconfigSetter({ gate_mul: 7 / 32767 }),
      qb.qconfig.calibration8bitWeight16bitActQconfigSetter,
    ]);
    const floatOut = g.forward(data);
    const l1 = tf.tidy(() => tf.mean(tf.abs(tf.sub(fixedModel.forward(data), floatOut))).dataSync()[0]);
    assert.ok(Math.abs(l1 - fixed.output_l1) < 1e-6, `${l1} vs ${fixed.output_l1}`);
    const sweep = qb.analysis.scaleExplorer(c, "gate_mul", { data, settings: [], sweep: [1e-4, 1e-3, 1e-2] });
    assert.deepEqual(
      sweep.map((r) => r.scale),
      [1e-4, 1e-3, 1e-2],
    );
    assert.ok(sweep[0].zero_fraction < sweep[2].zero_fraction);
    const gqa = new qb.analysis.QuantAnalysis(g, c);
    await assertThrows(
      () => gqa.advisor(),
      /advisor: no data given and none from an earlier call; pass \{ data \}, or run statistics/,
    );
    gqa.comparePerLayer({ data });
    const advice = gqa.advisor(); // reuses the data of the last call
    assert.ok(advice.rows.some((r) => r.op_name === "quant" && r.issue === "input far from symmetric"));
    assert.ok(advice.rows.some((r) => r.op_name === "gate_sigmoid" && r.issue === "model output not high precision"));
    [c, fixedModel, g].forEach((m) => m.dispose());
    tf.dispose([data, floatOut]);
  });
});
