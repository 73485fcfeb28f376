/**
 * The onnxruntime engine against the tfjs path it replaces: every registry op's lowering against
 * the op's tfjs compute, the fake-quantizer graph bit-exact against PyTorch's goldens, whole
 * models (calibrated scales, validation outputs, sensitivity tables), the fallback, options and leaks.
 */
import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { before, describe, it } from "node:test";
import * as qb from "../src";
import { allOps, type OpDef } from "../src/ops";
import { ortModel, setEngineOptions, engineOptions, type OrtModel } from "../src/workflow/engine";
import { chooseCuts, frontierAt } from "../src/workflow/engine/cuts";
import { runtimeOf } from "../src/workflow/quantRuntime";
import { runModel } from "../src/analysis/runner";
import { GOLDEN_CASES, oneOpModel, opTypeOf } from "./opCases";
import { assertWithinOneStep, fixture, readJson, setup } from "./helpers";
import { relErr } from "./onnxOracle";

const ten = (v: { shape: number[]; data: number[] }) => tf.tensor(v.data, v.shape, "float32");

class Stubbed extends qb.nn.Module {
  quant = new qb.nn.QuantStub();
  dequant = new qb.nn.DeQuantStub();
  forward(x: tf.Tensor): tf.Tensor {
    return this.dequant.forward(this.quant.forward(x));
  }
}

function scalesOf(m: qb.nn.Module): number[][] {
  return qb.analysis
    .preparedOps(m)
    .flatMap((o) => [...o.inputs, o.weight, o.output].flatMap((fq) => (fq ? [Array.from(fq.scale() ?? [])] : [])));
}

describe("onnxruntime engine", () => {
  before(setup);

  it("every registry op has an ONNX lowering", () => {
    assert.deepEqual(
      allOps()
        .filter((d) => d.onnx === undefined)
        .map((d) => d.type),
      [],
    );
  });

  it("every op's lowering computes what its tfjs compute does (golden cases, within 1e-5 relative)", () => {
    const problems: string[] = [];
    const covered = new Set<string>();
    for (const c of GOLDEN_CASES) {
      const xs = c.inputs.map(ten);
      const { model, dispose } = oneOpModel(c);
      const prepared = qb.prepare(model.eval(), xs, { qconfigSetter: [], warn: false, engine: "ort" });
      const rt = runtimeOf(prepared, "test");
      const fast = ortModel(prepared, rt, xs);
      if (fast === null) problems.push(`${c.name}: no engine`);
      else {
        const [got] = fast.forward(xs);
        const want = prepared.forward(...xs) as tf.Tensor;
        assert.deepEqual(got.shape, want.shape, c.name);
        const err = relErr(got.dataSync(), want.dataSync());
        if (!(err <= 1e-5)) problems.push(`${c.name} (${opTypeOf(c)}): relative error ${err}`);
        covered.add(opTypeOf(c));
        tf.dispose([got, want]);
      }
      tf.dispose(xs);
      prepared.dispose();
      dispose();
    }
    assert.deepEqual(problems, []);
    const untested = allOps()
      .map((d) => d.type)
      .filter((t) => !covered.has(t) && t !== "QuantStub" && t !== "DeQuantStub");
    assert.deepEqual(untested, [], "ops whose lowering no golden case runs");
  });

  it("every op fake-quantized on the engine is within one step of tfjs (int8 and int16 activations)", async () => {
    const problems: string[] = [];
    for (const setter of [
      qb.qconfig.defaultCalibrationQconfigSetter,
      qb.qconfig.calibration8bitWeight16bitActQconfigSetter,
    ]) {
      for (const c of GOLDEN_CASES) {
        const xs = c.inputs.map(ten);
        const { model, dispose } = oneOpModel(c);
        const prepared = qb.prepare(model.eval(), xs, { qconfigSetter: [setter], warn: false, engine: "tfjs" });
        qb.setFakeQuantize(prepared, qb.FakeQuantState.CALIBRATION);
        await qb.calibrate(prepared, [xs]);
        qb.setFakeQuantize(prepared, qb.FakeQuantState.VALIDATION);
        const rt = runtimeOf(prepared, "test");
        const want = prepared.forward(...xs) as tf.Tensor;
        const fast = ortModel(prepared, rt, xs, false, "ort");
        const [got] = (fast as NonNullable<typeof fast>).forward(xs);
        const out = qb.analysis
          .preparedOps(prepared)
          .find((o) => o.info.type !== "DeQuantStub" && o.info.consumers.some((n) => n.startsWith("dequant")));
        const step = out ? (rt.outputQuantizer(out.info.name)?.scale()?.[0] ?? null) : null;
        try {
          if (step === null) assert.ok(relErr(got.dataSync(), want.dataSync()) < 1e-4, "float output");
          else assertWithinOneStep(got.dataSync(), want.dataSync(), step * (1 + 1e-6), 0.99);
        } catch (e) {
          problems.push(
            `${c.name} (${opTypeOf(c)}, ${setter === qb.qconfig.defaultCalibrationQconfigSetter ? "int8" : "int16"}): ${(e as Error).message}`,
          );
        }
        tf.dispose([...xs, got, want]);
        prepared.dispose();
        dispose();
      }
    }
    assert.deepEqual(problems, []);
  });

  interface FqCase {
    kind: string;
    dtype: "qint8" | "qint16";
    scale?: number;
    shape: number[];
    x: number[];
    y: number[];
    y_bpu?: number[];
  }
  for (const c of readJson<FqCase[]>("fake_quant.json").filter((c) => c.kind === "per_tensor")) {
    it(`the fake-quantizer graph is bit-exact with PyTorch: ${c.dtype} scale ${c.scale}, both roundings`, async () => {
      for (const round of ["half_even", "bpu"] as const) {
        const want = round === "bpu" ? c.y_bpu : c.y;
        if (want === undefined) continue;
        const x = tf.tensor(c.x, c.shape);
        const dtype = c.dtype === "qint8" ? qb.qint8 : qb.qint16;
        const m = qb.prepare(new Stubbed().eval(), x, {
          qconfigSetter: [
            qb.qconfig.ModuleNameQconfigSetter({
              quant: qb.qconfig.getQconfig({ outDtype: dtype, fixScale: c.scale as number }),
            }),
          ],
          warn: false,
          engine: "ort",
        });
        for (const op of qb.analysis.preparedOps(m)) if (op.output) op.output.roundMode = round;
        qb.setFakeQuantize(m, qb.FakeQuantState.CALIBRATION);
        await qb.calibrate(m, [x]);
        qb.setFakeQuantize(m, qb.FakeQuantState.VALIDATION);
        const [y] = (ortModel(m, runtimeOf(m, "test"), [x]) as NonNullable<ReturnType<typeof ortModel>>).forward([x]);
        const got = y.dataSync();
        const bad = want.findIndex((v, i) => Math.fround(v) !== got[i]);
        assert.equal(bad, -1, `${round}: element ${bad}: engine ${got[bad]}, PyTorch ${want[bad]}`);
        tf.dispose([x, y]);
        m.dispose();
      }
    });
  }

  /** One model on both engines: calibrated scales, validation outputs, the sensitivity table. */
  async function agree(
    t: { diagnostic(s: string): void },
    name: string,
    model: qb.nn.Module,
    batches: tf.Tensor[],
  ): Promise<void> {
    const x = batches[0];
    const run = async (engine: "ort" | "tfjs") => {
      const m = qb.prepare(model, x, { qconfigSetter: [qb.qconfig.defaultQatQconfigSetter], warn: false, engine });
      qb.setFakeQuantize(m, qb.FakeQuantState.CALIBRATION);
      await qb.calibrate(m, batches);
      qb.setFakeQuantize(m, qb.FakeQuantState.VALIDATION);
      const qa = new qb.analysis.QuantAnalysis(model, m);
      const sens = qa.sensitivity({ data: x });
      const out = runModel(m, runtimeOf(m, "t"), [x]);
      return { m, scales: scalesOf(m), sens: sens.rows, out };
    };
    const a = await run("tfjs");
    const b = await run("ort");
    assert.equal(qb.backend.engine(b.m).engine, "ort", `${name}: ${qb.backend.engine(b.m).reason}`);
    assert.equal(qb.backend.engine(a.m).engine, "tfjs");
    // the same MinMax ranges: weights and the stub exactly; activations after convolutions differ only by
    // the two libraries' float summation order
    assert.deepEqual(b.scales[0], a.scales[0], `${name}: the QuantStub's scale`);
    let worst = 0;
    a.scales.forEach((s, i) => s.forEach((v, j) => (worst = Math.max(worst, Math.abs(v - b.scales[i][j]) / v))));
    assert.ok(worst < 1e-5, `${name}: scales differ by ${worst} relative`);
    const weights = (m: qb.nn.Module) =>
      qb.analysis.preparedOps(m).flatMap((o) => (o.weight ? [Array.from(o.weight.scale() ?? [])] : []));
    assert.deepEqual(weights(b.m), weights(a.m), `${name}: weight scales`);
    // validation outputs within one quantization step of the output's grid (the last op keeps a float output: relative)
    b.out.forEach((o, i) =>
      assert.ok(relErr(o.dataSync(), a.out[i].dataSync()) < 0.02, `${name}: validation output ${i}`),
    );
    // sensitivity: the same top-10 order (rows whose values tie within 1e-6 may swap) and values within 1e-2 relative
    const ours = new Map(b.sens.map((r) => [`${r.op_name}:${r.sensitive_type}`, r.value]));
    const rel = a.sens.map(
      (r) =>
        Math.abs((ours.get(`${r.op_name}:${r.sensitive_type}`) as number) - r.value) /
        Math.max(Math.abs(r.value), 1e-30),
    );
    for (let i = 0; i < Math.min(10, a.sens.length); i++) {
      assert.ok(rel[i] <= 1e-2, `${name} row ${i}: ${b.sens[i].value} vs ${a.sens[i].value}`);
      const tied = Math.abs(b.sens[i].value - a.sens[i].value) <= 1e-6 * Math.abs(a.sens[i].value);
      assert.ok(
        tied ||
          `${b.sens[i].op_name}:${b.sens[i].sensitive_type}` === `${a.sens[i].op_name}:${a.sens[i].sensitive_type}`,
        `${name} row ${i} order`,
      );
    }
    // a value moves when a float difference of one ulp flips a rounding at the point under test (one step)
    t.diagnostic(
      `${name}: ${rel.filter((r) => r > 1e-3).length} of ${rel.length} sensitivity values differ by more than 1e-3 relative (largest ${Math.max(...rel).toExponential(2)})`,
    );
    tf.dispose([...a.out, ...b.out]);
    a.m.dispose();
    b.m.dispose();
  }

  for (const [name, make] of [
    ["ResNet-18", () => new qb.examples.ResNet18()],
    ["MobileNetV3-Small", () => new qb.examples.MobileNetV3Small()],
  ] as const) {
    it(`${name}: scales, validation outputs and the sensitivity table agree with tfjs`, async (t) => {
      const model = qb.examples.deterministicInit(make(), 1).eval();
      const batches = [3, 4].map((seed) => tf.randomNormal([1, 3, 96, 96], 0, 1, "float32", seed));
      await agree(t, name, model, batches);
      tf.dispose(batches);
      model.dispose();
    });
  }

  it("the article model and every ONNX test model (one opset each) agree with tfjs (scales, outputs, sensitivity)", async (t) => {
    const sd = (await qb.io.loadTorch(fixture("float-checkpoint.ckpt"))) as Record<string, tf.Tensor>;
    const x = (await qb.io.loadTorch(fixture("random_data.pt"))) as tf.Tensor;
    const article = new qb.examples.SmallModel();
    article.loadStateDict(sd);
    await agree(t, "article model", article.eval(), [x]);
    article.dispose();
    qb.io.disposeAll(sd);
    x.dispose();
    const dir = path.join(__dirname, "..", "..", "test", "fixtures", "onnx");
    const index = JSON.parse(readFileSync(path.join(dir, "index.json"), "utf8")) as Record<string, { input: number[] }>;
    // one opset of each model (the import's opset handling is onnx.test.ts's)
    const files = Object.keys(index).filter((f) => f.endsWith(".onnx"));
    for (const file of files.filter(
      (f, i) => files.findIndex((g) => g.replace(/_opset\d+/, "") === f.replace(/_opset\d+/, "")) === i,
    )) {
      const m = await qb.io.loadOnnx(path.join(dir, file));
      const batches = [51, 52].map((seed) => tf.randomNormal(index[file].input, 0, 1, "float32", seed));
      await agree(t, file, m.eval(), batches);
      tf.dispose(batches);
      m.dispose();
    }
  });

  it("sensitivity runs from graph cuts give exactly what one whole-graph run per point gives", async () => {
    const model = qb.examples.deterministicInit(new qb.examples.ResNet18(), 3).eval();
    const x = tf.randomNormal([1, 3, 64, 64], 0, 1, "float32", 8);
    const m = qb.prepare(model, x, {
      qconfigSetter: [qb.qconfig.calibration8bitWeight16bitActQconfigSetter],
      warn: false,
      engine: "ort",
    });
    qb.setFakeQuantize(m, qb.FakeQuantState.CALIBRATION);
    await qb.calibrate(m, [x]);
    qb.setFakeQuantize(m, qb.FakeQuantState.VALIDATION);
    const rt = runtimeOf(m, "t");
    const fast = ortModel(m, rt, [x]) as OrtModel;
    const points = [...rt.fakeQuantizers()].map(([, , fq]) => fq);
    const firstOp = new Map(fast.slots.map((s) => [s.fq, s.firstOp]));
    const cuts = chooseCuts(
      rt.graph,
      points.map((fq) => firstOp.get(fq) ?? 0),
    );
    assert.ok(cuts.length >= 3, `ResNet-18 is cut (${cuts.length} cuts)`);
    // a residual block's inside is crossed by its skip and its main branch: every frontier has one or two values
    for (const c of cuts) assert.ok(c.frontier.length >= 1 && c.frontier.length <= 2, `cut ${c.from}: ${c.frontier}`);
    const l1 = (a: tf.Tensor, b: tf.Tensor) => tf.tidy(() => tf.mean(tf.abs(tf.sub(a, b))).dataSync()[0]);
    const swept = new Map<number | "float", number>();
    let ref: tf.Tensor[] = [];
    fast.sweep([x], points, (k, outs) => {
      if (k === "float") ref = outs;
      else {
        swept.set(k, l1(outs[0], ref[0]));
        tf.dispose(outs);
      }
    });
    const whole = fast.forward([x], () => false);
    assert.equal(l1(whole[0], ref[0]), 0, "the float reference");
    points.forEach((fq, k) => {
      const outs = fast.forward([x], (s) => s.fq === fq);
      assert.equal(swept.get(k), l1(outs[0], ref[0]), `point ${k} (${fq.where})`);
      tf.dispose(outs);
    });
    assert.equal(swept.size, points.length);
    tf.dispose([...ref, ...whole, x]);
    m.dispose();
  });

  it("a cut's frontier: what was made before it and is read at or after it (a diamond crosses twice)", () => {
    const op = (name: string, ...sources: string[]) => ({
      name,
      type: "Relu",
      modulePath: name,
      inputs: sources.map((source) => ({ source, shape: [1] })),
      outputShape: [1],
      paramShapes: [],
      flops: 1,
      attrs: {},
      consumers: [],
    });
    // x → a → (b, c) → d = b + c; e = d + a (a long skip)
    const ops = [op("a", "<input:0>"), op("b", "a"), op("c", "a", "<float>"), op("d", "b", "c"), op("e", "d", "a")];
    const graph = { ops, byName: new Map(ops.map((o) => [o.name, o])), outputs: ["e"], inputShapes: [[1]] };
    assert.deepEqual(frontierAt(graph, 0), ["<input:0>"]);
    assert.deepEqual(frontierAt(graph, 2), ["a", "b"]);
    assert.deepEqual(frontierAt(graph, 3), ["b", "c", "a"]);
    assert.deepEqual(frontierAt(graph, 4), ["d", "a"]);
    assert.deepEqual(frontierAt(graph, 5), ["e"]);
  });

  it("a model with an op that has no lowering runs on tfjs and says so in one line", async () => {
    const m = qb.prepare(new Stubbed().eval(), tf.ones([1, 4]), {
      qconfigSetter: [qb.qconfig.defaultQatQconfigSetter],
      warn: false,
      engine: "ort",
    });
    const def = allOps().find((d) => d.type === "QuantStub") as OpDef;
    const saved = def.onnx;
    const warnings: string[] = [];
    const warn = console.warn;
    console.warn = (msg: string) => warnings.push(msg);
    try {
      delete def.onnx;
      assert.equal(qb.backend.engine(m).engine, "tfjs");
      assert.match(qb.backend.engine(m).reason, /no ONNX lowering for QuantStub/);
      qb.setFakeQuantize(m, qb.FakeQuantState.CALIBRATION);
      await qb.calibrate(m, [tf.ones([1, 4])]);
      await qb.calibrate(m, [tf.ones([1, 4])]);
      assert.equal(warnings.length, 1, "one notice per model");
      assert.match(warnings[0], /runs on tfjs, not onnxruntime: no ONNX lowering for QuantStub/);
      assert.ok(qb.analysis.preparedOps(m)[0].output?.scale() !== null, "calibrated on tfjs");
    } finally {
      if (saved) def.onnx = saved;
      console.warn = warn;
      m.dispose();
    }
  });

  it("small models stay on tfjs under auto; QAT always does; QUANTBOOK_ENGINE and { engine } force", () => {
    const x = tf.ones([1, 4]);
    const m = qb.prepare(new Stubbed().eval(), x, { qconfigSetter: [qb.qconfig.defaultQatQconfigSetter], warn: false });
    assert.equal(qb.backend.engine(m).engine, "tfjs");
    assert.match(qb.backend.engine(m).reason, /small model/);
    process.env.QUANTBOOK_ENGINE = "ort";
    try {
      assert.equal(qb.backend.engine(m).engine, "ort");
      process.env.QUANTBOOK_ENGINE = "fast";
      assert.throws(
        () => qb.backend.engine(m),
        /QUANTBOOK_ENGINE: 'fast' is not an engine; set it to ort, tfjs or auto/,
      );
    } finally {
      delete process.env.QUANTBOOK_ENGINE;
    }
    assert.throws(
      () => qb.prepare(new Stubbed().eval(), x, { qconfigSetter: [], engine: "gpu" as "ort" }),
      /prepare: engine 'gpu' is not an engine; pass "auto", "ort" or "tfjs"/,
    );
    tf.dispose(x);
    m.dispose();
  });

  it("engine options: threads, providers; a missing provider is a clear error and changes nothing", () => {
    const before = engineOptions();
    assert.ok(before.intraOpNumThreads >= 1);
    assert.deepEqual(before.executionProviders, ["cpu"]);
    assert.throws(
      () => qb.backend.setEngineOptions({ executionProviders: ["cuda", "cpu"] }),
      /setEngineOptions: execution provider.*cuda.*onnxruntime-node-install=cuda12/,
    );
    assert.throws(
      () => setEngineOptions({ intraOpNumThreads: 0 }),
      /intraOpNumThreads 0; pass a whole number of threads/,
    );
    assert.deepEqual(engineOptions(), before);
    qb.backend.setEngineOptions({ intraOpNumThreads: 1 });
    assert.equal(engineOptions().intraOpNumThreads, 1);
    qb.backend.setEngineOptions({ intraOpNumThreads: before.intraOpNumThreads });
  });

  it("no leak over 30 prepare / calibrate / sensitivity cycles on the engine: tensors flat, RSS bounded", async (t) => {
    const model = qb.examples.deterministicInit(new qb.examples.ResNet18(), 2).eval();
    const x = tf.randomNormal([1, 3, 32, 32], 0, 1, "float32", 5);
    const cycle = async () => {
      const m = qb.prepare(model, x, {
        qconfigSetter: [qb.qconfig.defaultQatQconfigSetter],
        warn: false,
        engine: "ort",
      });
      qb.setFakeQuantize(m, qb.FakeQuantState.CALIBRATION);
      await qb.calibrate(m, [x]);
      qb.setFakeQuantize(m, qb.FakeQuantState.VALIDATION);
      new qb.analysis.QuantAnalysis(model, m).sensitivity({ data: x });
      m.dispose();
    };
    for (let i = 0; i < 6; i++) await cycle();
    const before = tf.memory().numTensors;
    const rss0 = process.memoryUsage().rss;
    for (let i = 0; i < 24; i++) await cycle();
    const grown = (process.memoryUsage().rss - rss0) / 2 ** 20;
    t.diagnostic(`RSS after 6 cycles ${(rss0 / 2 ** 20).toFixed(0)} MB, grew ${grown.toFixed(0)} MB over the next 24`);
    assert.equal(tf.memory().numTensors, before);
    // every cycle copies the model's 45 MB of weights (prepare, capture): a leak of either is 1.1 GB here
    assert.ok(grown < 400, `RSS grew ${grown.toFixed(0)} MB over 24 cycles`);
    x.dispose();
    model.dispose();
  });

  it("a script that never calls initBackend gets the wasm backend from loadOnnx / calibrate, and no tfjs banner", () => {
    // a fresh process: in this one the test setup already chose the backend
    const src = path.join(__dirname, "..", "src");
    const script = `
      const qb = require(${JSON.stringify(src)});
      const { OnnxBuilder } = require(${JSON.stringify(path.join(src, "ops", "lowering"))});
      const before = qb.backend.active();
      const x = qb.tf.ones([1, 2, 6, 6]);
      const b = new OnnxBuilder();
      b.addInput("x", "float32", [1, 2, 6, 6]);
      b.named("Conv", ["x", b.constant(new Float32Array(2 * 2 * 9).fill(0.1), [2, 2, 3, 3])], "y", { pads: [1, 1, 1, 1] });
      b.addOutput("y");
      (async () => {
        const m = await qb.io.loadOnnx(b.encode());
        qb.setMarch(qb.March.NASH_M);
        const p = qb.prepare(m.eval(), x, { qconfigSetter: [qb.qconfig.defaultCalibrationQconfigSetter], warn: false });
        qb.setFakeQuantize(p, qb.FakeQuantState.CALIBRATION);
        await qb.calibrate(p, [x]);
        console.log(JSON.stringify({ before, after: qb.backend.active(), sum: qb.tf.sum(x).dataSync()[0] }));
      })().catch((e) => { console.error(e); process.exit(1); });`;
    const env = { ...process.env };
    delete env.QUANTBOOK_BACKEND;
    const r = spawnSync(process.execPath, ["-e", script], { encoding: "utf8", env });
    assert.equal(r.status, 0, r.stderr);
    const got = JSON.parse(r.stdout.trim().split("\n").pop() as string);
    assert.equal(got.after, "wasm", "loadOnnx / calibrate chose the wasm backend");
    assert.equal(got.sum, 72, "a tensor made before the switch still reads");
    assert.doesNotMatch(r.stderr + r.stdout, /looks like you are running TensorFlow\.js in Node/);
  });
});
