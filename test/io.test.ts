import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { before, describe, it } from "node:test";
import * as qb from "../src";
import { assertNoLeak, assertThrows, fixture, maxAbsDiff, readJson, setup } from "./helpers";

interface Expect {
  dtypes: Record<string, { shape: number[]; values: number[] }>;
  views: Record<string, { shape: number[]; values: number[] }>;
}
const expected = readJson<Expect>("loader_expect.json");

/** The values make_fixtures.py saved (every dtype, views of one storage, nested containers), in either format. */
async function checkDtypes(file: string): Promise<void> {
  const sd = (await qb.io.loadTorch(fixture(file))) as Record<string, tf.Tensor>;
  assert.deepEqual(Object.keys(sd), Object.keys(expected.dtypes));
  for (const [name, want] of Object.entries(expected.dtypes)) {
    const t = sd[name];
    assert.ok(t instanceof tf.Tensor, name);
    assert.deepEqual(t.shape, want.shape, name);
    assert.equal(t.dtype, name === "bool" ? "bool" : /int/.test(name) ? "int32" : "float32", name);
    // float16/bfloat16 values were rounded by PyTorch; the fixture holds the rounded values
    assert.deepEqual(
      Array.from(t.dataSync()),
      want.values.map((v) => Math.fround(v)),
      name,
    );
  }
  qb.io.disposeAll(sd);
}

async function checkViews(file: string): Promise<void> {
  const sd = (await qb.io.loadTorch(fixture(file))) as Record<string, tf.Tensor>;
  for (const [name, want] of Object.entries(expected.views)) {
    assert.deepEqual(sd[name].shape, want.shape, name);
    assert.deepEqual(Array.from(sd[name].dataSync()), want.values, name);
  }
  qb.io.disposeAll(sd);
}

async function checkNested(file: string): Promise<void> {
  const v = (await qb.io.loadTorch(fixture(file))) as Record<string, any>;
  assert.equal(v.epoch, 7);
  assert.equal(v.lr, 0.125);
  assert.equal(v.name, "run-3");
  assert.deepEqual([...v.flags], [true, null]);
  assert.deepEqual(Array.from(v.inner.w.dataSync()), [1, 1, 1, 1]);
  assert.deepEqual(Array.from(v.inner.pair[0].dataSync()), [1, 2]);
  assert.equal(v.inner.pair[1], 3);
  assert.deepEqual(Array.from(v.params[0].dataSync()), [0.5, 0.5, 0.5]);
  qb.io.disposeAll(v);
}

describe("loadTorch (PyTorch zip checkpoints)", () => {
  before(setup);

  it("reads every storage dtype", () => checkDtypes("loader_dtypes.pt"));

  it("reads views: offsets, strides, transposes", () => checkViews("loader_views.pt"));

  it("keeps nested containers, numbers, strings and parameters", () => checkNested("loader_nested.pt"));

  it("reads the article checkpoint as a state dict", async () => {
    const sd = (await qb.io.loadTorch(fixture("float-checkpoint.ckpt"))) as Record<string, tf.Tensor>;
    assert.deepEqual(Object.keys(sd), [
      "linear1.weight",
      "linear1.bias",
      "layernorm.weight",
      "layernorm.bias",
      "linear2.weight",
      "linear2.bias",
      "linear3.weight",
      "linear3.bias",
    ]);
    assert.deepEqual(sd["linear2.weight"].shape, [60, 256]);
    const stats = readJson<{ linear2_weight: { min: number; max: number } }>("article_stats.json");
    assert.equal(sd["linear2.weight"].min().dataSync()[0], Math.fround(stats.linear2_weight.min));
    qb.io.disposeAll(sd);
  });

  it("refuses a pickle that would run a command, and runs nothing", async () => {
    rmSync("/tmp/quantbook-pwned", { force: true });
    await assertThrows(
      () => qb.io.loadTorch(fixture("malicious.pt")),
      /malicious\.pt/,
      /posix\.system/,
      /refusing/,
      /never runs code/,
    );
    assert.equal(existsSync("/tmp/quantbook-pwned"), false);
  });

  it("rejects truncated files at any length without leaking", async () => {
    const buf = readFileSync(fixture("loader_views.pt"));
    const before = tf.memory().numTensors;
    for (const cut of [10, 100, 400, buf.length - 200, buf.length - 30, buf.length - 1]) {
      await assertThrows(
        () => qb.io.parseTorch(buf.subarray(0, cut), `cut-${cut}.pt`),
        new RegExp(`cut-${cut}\\.pt`),
        /truncated|damaged|not a zip/,
      );
    }
    assert.equal(tf.memory().numTensors, before);
  });

  it("rejects files that are not checkpoints", async () => {
    await assertThrows(
      () => qb.io.loadTorch(fixture("not_a_checkpoint.pt")),
      /not_a_checkpoint\.pt/,
      /not a PyTorch checkpoint/,
    );
    await assertThrows(() => qb.io.loadTorch(fixture("no-such-file.pt")), /cannot read/, /no-such-file/);
    await assertThrows(
      () => qb.io.parseTorch(Buffer.from([0x80, 0x02, 0x8a, 0x0a]), "old.pt"),
      /old\.pt/,
      /legacy format/,
      /truncated/,
    );
  });

  it("does not leak tensors when values are disposed", async () => {
    await assertNoLeak(async () => qb.io.disposeAll(await qb.io.loadTorch(fixture("loader_views.pt"))));
  });
});

describe("loadTorch (legacy pre-1.6 format)", () => {
  before(setup);

  it("reads every storage dtype, the same values as the zip format", () => checkDtypes("legacy_dtypes.pt"));

  it("reads views of one shared storage: offsets, strides, transposes", () => checkViews("legacy_views.pt"));

  it("reads a storage view as PyTorch < 1.6 wrote it (PyTorch loads it as [2, 3, 4])", async () => {
    const sd = (await qb.io.loadTorch(fixture("legacy_storage_view.pt"))) as Record<string, tf.Tensor>;
    assert.deepEqual(Array.from(sd.v.dataSync()), [2, 3, 4]);
    assert.deepEqual(Array.from(sd.w.dataSync()), [0, 1, 2, 3, 4, 5]);
    qb.io.disposeAll(sd);
  });

  it("keeps nested containers, numbers, strings and parameters", () => checkNested("legacy_nested.pt"));

  it("reads the article checkpoint re-saved in the legacy format: bit-identical to the zip file", async () => {
    const legacy = (await qb.io.loadTorch(fixture("legacy-checkpoint.ckpt"))) as Record<string, tf.Tensor>;
    const zip = (await qb.io.loadTorch(fixture("float-checkpoint.ckpt"))) as Record<string, tf.Tensor>;
    assert.deepEqual(Object.keys(legacy), Object.keys(zip));
    for (const k of Object.keys(zip)) {
      assert.deepEqual(legacy[k].shape, zip[k].shape, k);
      assert.equal(maxAbsDiff(legacy[k].dataSync(), zip[k].dataSync()), 0, k);
    }
    const m = new qb.examples.SmallModel();
    m.loadStateDict(legacy);
    m.dispose();
    qb.io.disposeAll(legacy);
    qb.io.disposeAll(zip);
  });

  it("refuses a legacy pickle that would run a command, and runs nothing", async () => {
    rmSync("/tmp/quantbook-pwned", { force: true });
    await assertThrows(
      () => qb.io.loadTorch(fixture("legacy_malicious.pt")),
      /legacy_malicious\.pt/,
      /posix\.system/,
      /refusing/,
    );
    assert.equal(existsSync("/tmp/quantbook-pwned"), false);
  });

  it("rejects truncated and damaged legacy files without leaking", async () => {
    const buf = readFileSync(fixture("legacy_views.pt"));
    const before = tf.memory().numTensors;
    for (const cut of [3, 20, 100, 400, buf.length - 100, buf.length - 9, buf.length - 1]) {
      await assertThrows(
        () => qb.io.parseTorch(buf.subarray(0, cut), `cut-${cut}.pt`),
        new RegExp(`cut-${cut}\\.pt`),
        /legacy format/,
        /truncated/,
      );
    }
    // another pickle where the magic number belongs
    const notTorch = Buffer.from([0x80, 0x02, 0x4b, 0x07, 0x2e]);
    await assertThrows(() => qb.io.parseTorch(notTorch, "seven.pkl"), /seven\.pkl/, /not with torch's magic number/);
    // a list that contains itself, where the storage keys belong: refused, no hang
    const keysAt = buf.lastIndexOf(Buffer.from([0x80, 0x02, 0x5d]));
    const cyclic = Buffer.concat([
      buf.subarray(0, keysAt),
      Buffer.from([0x80, 0x02, 0x5d, 0x71, 0x00, 0x68, 0x00, 0x61, 0x2e]),
    ]);
    await assertThrows(() => qb.io.parseTorch(cyclic, "cyclic.pt"), /cyclic\.pt/, /not a list of strings/);
    assert.equal(tf.memory().numTensors, before);
  });

  it("bounds what a declared shape may allocate", async () => {
    // the views file with a tensor size field inflated: refused before any allocation
    const buf = readFileSync(fixture("legacy_storage_view.pt"));
    const at = buf.indexOf(Buffer.from([0x4b, 0x06, 0x85])); // BININT1 6, TUPLE1: the size (6,)
    assert.ok(at > 0);
    const huge = Buffer.concat([
      buf.subarray(0, at),
      Buffer.from([0x4a, 0x00, 0x00, 0x00, 0x40]),
      buf.subarray(at + 2),
    ]);
    await assertThrows(() => qb.io.parseTorch(huge, "huge.pt"), /huge\.pt/, /larger than this reader accepts/);
  });
});

describe("safetensors", () => {
  before(setup);

  it("reads a file written from the spec by the fixture script", async () => {
    const sd = await qb.io.loadSafetensors(fixture("small.safetensors"));
    assert.deepEqual(Array.from(sd.a.dataSync()), [1, -2, 3.5, 4.25]);
    assert.deepEqual(sd.a.shape, [2, 2]);
    assert.deepEqual(Array.from(sd.b.dataSync()), [1, 2, 3]);
    assert.equal(sd.b.dtype, "int32");
    assert.deepEqual(Array.from(sd.h.dataSync()), [0.5, -1.5]);
    qb.io.disposeAll(sd);
  });

  it("round-trips what it writes", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "qb-"));
    const file = path.join(dir, "w.safetensors");
    const src = {
      w: tf.tensor([
        [1.25, -3],
        [7, 0.1],
      ]),
      n: tf.tensor([4, -5], [2], "int32"),
      m: tf.tensor([true, false], [2], "bool"),
    };
    await qb.io.saveSafetensors(file, src, { note: "test" });
    const back = await qb.io.loadSafetensors(file);
    for (const k of Object.keys(src) as (keyof typeof src)[]) {
      assert.deepEqual(back[k].shape, src[k].shape);
      assert.equal(back[k].dtype, src[k].dtype);
      assert.deepEqual(Array.from(back[k].dataSync()), Array.from(src[k].dataSync()));
    }
    qb.io.disposeAll(back);
    qb.io.disposeAll(src);
    rmSync(dir, { recursive: true });
  });

  it("rejects truncated and foreign files", async () => {
    const buf = readFileSync(fixture("small.safetensors"));
    await assertThrows(
      () => qb.io.parseSafetensors(buf.subarray(0, 5), "x.safetensors"),
      /x\.safetensors/,
      /truncated/,
    );
    await assertThrows(
      () => qb.io.parseSafetensors(buf.subarray(0, buf.length - 4), "y.safetensors"),
      /y\.safetensors/,
      /data_offsets/,
    );
    await assertThrows(
      () => qb.io.loadSafetensors(fixture("not_a_checkpoint.pt")),
      /not_a_checkpoint/,
      /truncated or not safetensors|not JSON/,
    );
  });
});
