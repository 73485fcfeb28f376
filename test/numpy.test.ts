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
const EXPECT = JSON.parse(readFileSync(path.join(DIR, "expect.json"), "utf8")) as Record<string, Want | Record<string, Want>>;

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
    await assertThrows(() => qb.io.loadNpy(path.join(DIR, "broken_truncated.npy")), /broken_truncated\.npy/, /cut short: 24 elements of 4 bytes need 96 bytes/);
    await assertThrows(() => qb.io.loadNpy(path.join(DIR, "broken_object.npy")), /broken_object\.npy/, /holds dtype '<U1'/, /astype\(np\.float32\)/);
    await assertThrows(() => qb.io.loadNpy(path.join(DIR, "broken_int64_range.npy")), /does not fit in int32/);
    await assertThrows(() => qb.io.loadNpy(path.join(DIR, "stored.npz")), /stored\.npz/, /not a \.npy file/);
    await assertThrows(() => qb.io.loadNpz(path.join(DIR, "scalar.npy")), /scalar\.npy/, /not a readable \.npz archive/);
    await assertThrows(() => qb.io.loadNpy(path.join(DIR, "missing.npy")), /missing\.npy/, /cannot read it/);
  });

  it("does not leak tensors", async () => {
    const buf = readFileSync(path.join(DIR, "deflated.npz"));
    await assertNoLeak(() => qb.io.disposeAll(qb.io.parseNpz(buf, "deflated.npz")));
  });
});
