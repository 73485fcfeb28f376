/**
 * Recurrent nets and control flow from ONNX (test/fixtures/make_recurrent_models.py writes the
 * graphs with torch.onnx.export and onnx.helper): LSTM / GRU / RNN, uni- and bidirectional, with
 * and without initial states, against onnxruntime on every output, then the whole workflow; an
 * If on a sample-rate input folded by constantInputs; unsupported ops found inside branches;
 * recurrent state carried across calibration batches.
 */
import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { before, describe, it } from "node:test";
import * as ort from "onnxruntime-node";
import * as qb from "../src";
import { assertThrows, setup } from "./helpers";
import { relErr } from "./onnxOracle";

const DIR = path.join(__dirname, "..", "..", "test", "fixtures", "onnx", "recurrent");
type Case = {
  file: string;
  inputs: Record<string, { shape: number[]; data: number[] }>;
  constantInputs?: Record<string, number[]>;
};
const INDEX = JSON.parse(readFileSync(path.join(DIR, "index.json"), "utf8")) as Record<string, Case>;

async function ortOutputs(file: string, feeds: Record<string, ort.Tensor>): Promise<Float32Array[]> {
  const s = await ort.InferenceSession.create(path.join(DIR, file), { intraOpNumThreads: 1 });
  const r = await s.run(feeds);
  const outs = s.outputNames.map((o) => r[o].data as Float32Array);
  await s.release();
  return outs;
}

const floatFeeds = (c: Case) =>
  Object.fromEntries(
    Object.entries(c.inputs).map(([k, v]) => [k, new ort.Tensor("float32", Float32Array.from(v.data), v.shape)]),
  );

describe("recurrent nets and control flow from ONNX", { timeout: 300000 }, () => {
  before(setup);

  for (const [name, c] of Object.entries(INDEX).filter(([n]) => !n.startsWith("if_"))) {
    it(`${name}: every output within 1e-4 of onnxruntime, then prepare → calibrate → sensitivity → checkModel → convert → perf`, async (t) => {
      const m = await qb.io.loadOnnx(path.join(DIR, c.file));
      const xs = Object.values(c.inputs).map((v) => tf.tensor(v.data, v.shape));
      const ys = [m.forward(...xs)].flat() as unknown as tf.Tensor[];
      const want = await ortOutputs(c.file, floatFeeds(c));
      assert.equal(ys.length, want.length);
      ys.forEach((y, i) =>
        assert.ok(relErr(y.dataSync(), want[i]) < 1e-4, `${name} output ${i}: ${relErr(y.dataSync(), want[i])}`),
      );
      qb.setMarch(qb.March.NASH_M);
      const calib = qb.prepare(m.eval(), xs, {
        qconfigSetter: [qb.qconfig.calibration8bitWeight16bitActQconfigSetter],
        warn: false,
      });
      qb.setFakeQuantize(calib, qb.FakeQuantState.CALIBRATION);
      await qb.calibrate(calib, [xs]);
      qb.setFakeQuantize(calib, qb.FakeQuantState.VALIDATION);
      const rows = new qb.analysis.QuantAnalysis(m, calib).sensitivity({ data: xs }).rows;
      // the gates are points of their own: a table names them
      const types = new Set(rows.map((r) => r.op_type));
      // (ReLU keeps its input's scale: no point of its own)
      for (const ty of [
        "Linear",
        "Add",
        ...(name.startsWith("rnn") ? (name.includes("relu") ? [] : ["Tanh"]) : ["Sigmoid"]),
      ])
        assert.ok(types.has(ty), `${name}: ${ty} rows (${[...types]})`);
      const ir = qb.export(calib, xs);
      assert.deepEqual(
        qb.march.checkModel(ir, qb.March.NASH_M).violations.map((v) => v.message),
        [],
      );
      const yq = [calib.forward(...xs)].flat() as unknown as tf.Tensor[];
      const yi = [qb.convert(ir, qb.March.NASH_M).forward(...xs)].flat() as unknown as tf.Tensor[];
      const errQ = relErr(yq[0].dataSync(), want[0]);
      const errI = relErr(yi[0].dataSync(), want[0]);
      assert.ok(errQ < 0.05 && errI < 0.05, `${name}: fake-quant ${errQ}, integer ${errI}`);
      const latency = qb.march.perf(ir).latencyMs;
      assert.ok(latency > 0);
      t.diagnostic(
        `${name}: ${qb.analysis.preparedOps(calib).length} ops, ${rows.length} sensitivity rows, output error fake-quant ${errQ.toExponential(2)} / integer ${errI.toExponential(2)}, ${latency.toFixed(4)} ms`,
      );
      tf.dispose([...xs, ...ys, ...yq, ...yi]);
      calib.dispose();
      m.dispose();
    });
  }

  it("an If on a sample-rate input folds to the branch constantInputs chooses, each branch matching onnxruntime", async () => {
    const c = INDEX.if_lstm;
    const x = tf.tensor(c.inputs.x.data, c.inputs.x.shape);
    await assertThrows(
      () => qb.io.loadOnnx(path.join(DIR, c.file)),
      /If \(its condition depends on input sr: fix with \{ constantInputs: \{ sr: … \} \}\)/,
      /by_rate/,
    );
    const outs: Float32Array[] = [];
    for (const sr of [16000, 8000]) {
      const m = await qb.io.loadOnnx(path.join(DIR, c.file), { constantInputs: { sr } });
      assert.deepEqual(
        m.onnx.inputs.map((i) => i.name),
        ["x"],
        "a fixed input is no longer an input",
      );
      const y = m.forward(x) as unknown as tf.Tensor;
      const [want] = await ortOutputs(c.file, {
        x: new ort.Tensor("float32", Float32Array.from(c.inputs.x.data), c.inputs.x.shape),
        sr: new ort.Tensor("int64", BigInt64Array.of(BigInt(sr)), []),
      });
      assert.ok(relErr(y.dataSync(), want) < 1e-4, `sr ${sr}: ${relErr(y.dataSync(), want)}`);
      outs.push(y.dataSync() as Float32Array);
      y.dispose();
      m.dispose();
    }
    assert.ok(relErr(outs[0], outs[1]) > 1e-2, "the two rates take different branches");
    await assertThrows(
      () => qb.io.loadOnnx(path.join(DIR, c.file), { constantInputs: { rate: 1 } }),
      /constantInputs: 'rate' is not an input of the graph; the inputs are x, sr/,
    );
    x.dispose();
  });

  it("unsupported ops are found inside If branches: one error lists the If and what its branch holds", async () => {
    const c = INDEX.if_lstm_unsupported;
    await assertThrows(
      () => qb.io.loadOnnx(path.join(DIR, c.file)),
      /2 op type\(s\)/,
      /If \(its condition depends on input sr/,
      /com\.example\.FancyNorm ×1 \(by_rate\/s2_fancy\)/,
    );
    // the branch without it loads; the one with it names it
    const m = await qb.io.loadOnnx(path.join(DIR, c.file), { constantInputs: { sr: 16000 } });
    m.dispose();
    await assertThrows(
      () => qb.io.loadOnnx(path.join(DIR, c.file), { constantInputs: { sr: 8000 } }),
      /com\.example\.FancyNorm ×1 \(s2_fancy\)/,
    );
  });

  for (const engine of ["tfjs", "ort"] as const) {
    it(`recurrent state carried across calibration batches (a stream of frames, ${engine} engine)`, async () => {
      const c = INDEX.lstm_states;
      const m = await qb.io.loadOnnx(path.join(DIR, c.file));
      const [x0, h0, c0] = Object.values(c.inputs).map((v) => tf.tensor(v.data, v.shape));
      const frames = [0, 1, 2].map((k) => tf.mul(x0, 1 + k) as tf.Tensor);
      qb.setMarch(qb.March.NASH_M);
      const calib = qb.prepare(m.eval(), [x0, h0, c0], {
        qconfigSetter: [qb.qconfig.defaultQatQconfigSetter],
        warn: false,
        engine,
      });
      qb.setFakeQuantize(calib, qb.FakeQuantState.CALIBRATION);
      await qb.calibrate(
        calib,
        frames.map((f) => [f, h0, c0]),
        { carry: { 1: 1, 2: 2 } },
      );
      // the states each frame started from, in float: the given ones, then each frame's final states
      const seen: tf.Tensor[] = [h0];
      let [h, cc] = [h0, c0];
      for (const f of frames.slice(0, -1)) {
        const [, hn, cn] = m.forward(f, h, cc) as unknown as tf.Tensor[];
        seen.push(hn);
        [h, cc] = [hn, cn];
      }
      // the QuantStub of input 1 (h0) observed every carried state: the same MinMax observer (moving average) replayed on them
      const replay = new qb.quant.MinMaxObserver({ dtype: qb.qint8 });
      seen.forEach((s) => replay.observe(s));
      const r = replay.range() as { min: Float64Array; max: Float64Array };
      const expected = Math.max(-r.min[0], r.max[0]) / 127.5;
      const stub = qb.analysis.preparedOps(calib).filter((o) => o.info.type === "QuantStub")[1];
      const scale = stub.output?.scale()?.[0] as number;
      assert.ok(Math.abs(scale - expected) <= 1e-6 * scale, `h0's stub scale ${scale} vs ${expected}`);
      assert.ok(
        Math.abs(scale - tf.max(tf.abs(h0)).dataSync()[0] / 127.5) > 1e-6 * scale,
        "the carried states moved the range",
      );
      // without carry it sees the given h0 only
      const plain = qb.prepare(m.eval(), [x0, h0, c0], {
        qconfigSetter: [qb.qconfig.defaultQatQconfigSetter],
        warn: false,
        engine,
      });
      qb.setFakeQuantize(plain, qb.FakeQuantState.CALIBRATION);
      await qb.calibrate(
        plain,
        frames.map((f) => [f, h0, c0]),
      );
      const h0Max = tf.max(tf.abs(h0)).dataSync()[0];
      assert.ok(
        Math.abs(
          (qb.analysis
            .preparedOps(plain)
            .filter((o) => o.info.type === "QuantStub")[1]
            .output?.scale()?.[0] as number) -
            h0Max / 127.5,
        ) < 1e-9,
      );
      await assertThrows(
        () => qb.calibrate(calib, [[x0, h0, c0]], { carry: { 1: 7 } }),
        /carry \{ 1: 7 \}: the model returns 3 outputs/,
      );
      tf.dispose([x0, h0, c0, ...frames, ...seen.slice(1)]);
      calib.dispose();
      plain.dispose();
      m.dispose();
    });
  }
});
