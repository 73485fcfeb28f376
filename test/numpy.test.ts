/**
 * The .npy / .npz reader against files NumPy wrote (test/fixtures/make_numpy_fixtures.py): every
 * dtype in both byte orders, Fortran order, format versions 1–3, npz stored and deflated; broken
 * files get an error naming the file and what is wrong.
 */
import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { before, describe, it } from "node:test";
import * as qb from "../src";
import { assertNoLeak, assertThrows, setup } from "./helpers";

const DIR = path.join(__dirname, "..", "..", "test", "fixtures", "numpy");
type Want = { shape: number[]; values: (number | boolean)[] };
const EXPECT = JSON.parse(readFileSync(path.join(DIR, "expect.json"), "utf8")) as Record<
  string,
  Want | Record<string, Want>
>;

function same(t: tf.Tensor, want: Want, label: string): void {
  assert.deepEqual(t.shape, want.shape, label);
  const got = Array.from(t.dataSync());
  const exp = want.values.map((v) => (typeof v === "boolean" ? (v ? 1 : 0) : Math.fround(v)));
  assert.deepEqual(got, exp, label);
}

describe("NumPy files", () => {
  before(setup);

  for (const [name, want] of Object.entries(EXPECT).filter(([n]) => n.endsWith(".npy"))) {
    it(`reads ${name}`, async () => {
      const t = await qb.io.loadNpy(path.join(DIR, name));
      same(t, want as Want, name);
      if (name.startsWith("dtype_b1")) assert.equal(t.dtype, "bool");
      if (/dtype_i|dtype_u1|dtype_u2/.test(name)) assert.equal(t.dtype, "int32", name);
      t.dispose();
    });
  }

  for (const name of ["stored.npz", "deflated.npz"]) {
    it(`reads ${name} (np.savez${name.startsWith("deflated") ? "_compressed" : ""})`, async () => {
      const arrays = await qb.io.loadNpz(path.join(DIR, name));
      const want = EXPECT[name] as Record<string, Want>;
      assert.deepEqual(Object.keys(arrays).sort(), ["image", "label"]);
      for (const [k, w] of Object.entries(want)) same(arrays[k], w, `${name}:${k}`);
      qb.io.disposeAll(arrays);
    });
  }

  it("refuses broken files with the file and the problem named", async () => {
    await assertThrows(
      () => qb.io.loadNpy(path.join(DIR, "broken_truncated.npy")),
      /broken_truncated\.npy/,
      /cut short: 24 elements of 4 bytes need 96 bytes/,
    );
    await assertThrows(
      () => qb.io.loadNpy(path.join(DIR, "broken_object.npy")),
      /broken_object\.npy/,
      /holds dtype '<U1'/,
      /astype\(np\.float32\)/,
    );
    await assertThrows(() => qb.io.loadNpy(path.join(DIR, "broken_int64_range.npy")), /does not fit in int32/);
    await assertThrows(() => qb.io.loadNpy(path.join(DIR, "stored.npz")), /stored\.npz/, /not a \.npy file/);
    await assertThrows(
      () => qb.io.loadNpz(path.join(DIR, "scalar.npy")),
      /scalar\.npy/,
      /not a readable \.npz archive/,
    );
    await assertThrows(() => qb.io.loadNpy(path.join(DIR, "missing.npy")), /missing\.npy/, /cannot read it/);
  });

  it("does not leak tensors", async () => {
    const buf = readFileSync(path.join(DIR, "deflated.npz"));
    await assertNoLeak(() => qb.io.disposeAll(qb.io.parseNpz(buf, "deflated.npz")));
  });
});

describe("datasets from disk", () => {
  before(setup);

  it("calibration_data/<input>/N.npy: one tensor per input, batched, shuffled with a seed, limited", async () => {
    const ds = qb.data.npyFolder(path.join(DIR, "calibration_data"), { batchSize: 2 });
    assert.deepEqual(ds.inputs, ["image", "scale"]);
    assert.equal(ds.samples, 5);
    assert.equal(ds.length, 3);
    const seen: number[][] = [];
    for await (const [image, scale] of ds) {
      assert.deepEqual(image.shape.slice(1), [3, 4, 4]);
      seen.push(Array.from(tf.tidy(() => tf.max(image, [1, 2, 3]).dataSync())));
      assert.deepEqual(
        Array.from(scale.dataSync()).filter((_, i) => i % 2 === 0),
        seen[seen.length - 1].map((v) => v + 0.5),
      );
    }
    assert.deepEqual(seen, [[0, 1], [2, 3], [4]]);
    // a seeded shuffle: the same order every time, a different one from the files' order; limit cuts it
    const a = qb.data
      .npyFolder(path.join(DIR, "calibration_data"), { shuffle: 7, limit: 4 })
      .files.map((f) => path.basename(f[0]));
    const b = qb.data
      .npyFolder(path.join(DIR, "calibration_data"), { shuffle: 7, limit: 4 })
      .files.map((f) => path.basename(f[0]));
    assert.deepEqual(a, b);
    assert.equal(a.length, 4);
    assert.notDeepEqual(
      qb.data.npyFolder(path.join(DIR, "calibration_data"), { shuffle: 7 }).files,
      qb.data.npyFolder(path.join(DIR, "calibration_data")).files,
    );
    // inputs reordered by name
    assert.deepEqual(qb.data.npyFolder(path.join(DIR, "calibration_data"), { inputs: ["scale", "image"] }).inputs, [
      "scale",
      "image",
    ]);
    await assertThrows(
      () => qb.data.npyFolder(path.join(DIR, "calibration_data"), { inputs: ["mask"] }),
      /no sub-folder for input mask; the sub-folders are image, scale/,
    );
  });

  it("a dataset calibrates a two-input model with bounded memory, and its batches are freed", async () => {
    class TwoInputs extends qb.nn.Module {
      qa = new qb.nn.QuantStub();
      qs = new qb.nn.QuantStub();
      dq = new qb.nn.DeQuantStub();
      forward(image: tf.Tensor, scale: tf.Tensor): tf.Tensor {
        return this.dq.forward(
          qb.F.mul(qb.F.mean(this.qa.forward(image), [1, 2, 3]), qb.F.mean(this.qs.forward(scale), 1)),
        );
      }
    }
    qb.setMarch(qb.March.NASH_M);
    const ds = qb.data.npyFolder(path.join(DIR, "calibration_data"), { batchSize: 1 });
    const [[image, scale]] = await ds.take(1);
    const m = qb.prepare(new TwoInputs().eval(), [image, scale], {
      qconfigSetter: [qb.qconfig.defaultQatQconfigSetter],
      warn: false,
    });
    qb.setFakeQuantize(m, qb.FakeQuantState.CALIBRATION);
    const before = tf.memory().numTensors;
    const totals: (number | undefined)[] = [];
    await qb.calibrate(m, ds, { onProgress: (p) => totals.push(p.total) });
    assert.equal(tf.memory().numTensors, before, "the dataset freed its batches");
    assert.deepEqual(totals, [5, 5, 5, 5, 5], "the dataset's length drives the progress");
    // the image stub saw values 0..4: the moving-average MinMax range grew from the first batch's
    assert.ok((qb.analysis.preparedOps(m)[0].output?.scale()?.[0] as number) > 0);
    tf.dispose([image, scale]);
    m.dispose();
  });

  it("raw uint8 images (numpy.tofile) of a declared shape, with a transform; a file of the wrong size is named", async () => {
    const ds = qb.data.rawFolder(path.join(DIR, "raw_rgb"), {
      shape: [4, 4, 3],
      dtype: "uint8",
      batchSize: 3,
      transform: (t) => tf.div(tf.transpose(t, [0, 3, 1, 2]), 255),
    });
    const [[batch]] = await ds.take();
    assert.deepEqual(batch.shape, [3, 3, 4, 4]);
    assert.deepEqual(
      Array.from(tf.tidy(() => tf.max(batch, [1, 2, 3]).dataSync())).map((v) => Math.round(v * 255)),
      [1, 11, 21],
    );
    batch.dispose();
    const bad = qb.data.rawFolder(path.join(DIR, "raw_bad"), { shape: [4, 4, 3], dtype: "uint8" });
    await assertThrows(
      () => bad.take(),
      /short\.bin/,
      /has 32 bytes; 48 uint8 elements of shape \[4,4,3\] are 48 bytes — check the declared shape and dtype/,
    );
    await assertThrows(
      () => qb.data.rawFolder(path.join(DIR, "raw_rgb"), { shape: [] as unknown as number[], dtype: "uint8" }).take(),
      /declare the shape of one sample/,
    );
    await assertThrows(() => qb.data.npyFolder(path.join(DIR, "nowhere")), /nowhere/, /cannot list it/);
    await assertThrows(() => qb.data.npyFolder(path.join(DIR, "raw_rgb")), /raw_rgb/, /has no \.npy files/);
  });

  it("batches in memory and torch / safetensors files as datasets (copies handed out, originals kept)", async () => {
    const a = tf.tensor([
      [1, 2],
      [3, 4],
    ]);
    const b = tf.tensor([[5, 6]]);
    const ds = qb.data.fromTensors([a, b]);
    assert.equal(ds.length, 2);
    const seen: number[][] = [];
    for await (const [t] of ds) seen.push(Array.from(t.dataSync()));
    assert.deepEqual(seen, [
      [1, 2, 3, 4],
      [5, 6],
    ]);
    assert.ok(!a.isDisposed && !b.isDisposed, "the originals are the caller's");
    await assertThrows(() => qb.data.fromTensors([a, [a, b]]), /batch 1 has 2 tensors, batch 0 has 1/);
    const pt = await qb.data.torchFile(path.join(DIR, "..", "random_data.pt"));
    const [[x]] = await pt.take();
    assert.deepEqual(x.shape, [2, 100, 256]);
    const st = await qb.data.torchFile(path.join(DIR, "..", "small.safetensors"));
    assert.ok(st.inputs.length >= 1 && st.inputs[0] !== "input", `named inputs: ${st.inputs}`);
    tf.dispose([a, b, x]);
  });
});
