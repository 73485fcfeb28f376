/**
 * A long session: 500 cells in a row through the kernel, 50 of them calibrations of the article
 * model, keep the kernel's memory bounded and tf.memory().numTensors flat.
 */
import assert from "node:assert/strict";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { KernelClient, type ExecuteResult } from "../kernel/client";
import { kernelSpec } from "../kernel/main";

const NOTEBOOKS = path.join(__dirname, "..", "..", "notebooks");
/** RSS growth allowed over the 500 cells (the first cells load tfjs, danfo and the model). */
const RSS_GROWTH_BOUND_MB = 150;

const value = (r: ExecuteResult) => {
  const out = r.outputs.find((o) => o.output_type === "execute_result") as
    { data: Record<string, unknown> } | undefined;
  return String(out?.data["text/plain"]);
};

describe("a long kernel session", { timeout: 300000 }, () => {
  let k: KernelClient;
  before(async () => {
    k = await KernelClient.start(kernelSpec().argv as string[], NOTEBOOKS);
  });
  after(async () => {
    await k.shutdown();
  });

  it(`500 cells (50 calibrations) keep numTensors flat and RSS within ${RSS_GROWTH_BOUND_MB} MB of growth`, async () => {
    const setup = await k.execute(
      'import * as qb from "quantbook";\nimport * as tf from "@tensorflow/tfjs";\nqb.setMarch(qb.March.NASH_M);\nconst x = tf.randomNormal([2, 10, 6, 256], 0, 1, "float32", 3);\nconst model = new qb.examples.SmallModel();\nconst mem = () => `${tf.memory().numTensors} ${Math.round(process.memoryUsage().rss / 1e6)}`;',
    );
    assert.equal(setup.status, "ok", JSON.stringify(setup.outputs));
    const calibrateCell =
      "const c = qb.prepare(model.eval(), x, { qconfigSetter: [qb.qconfig.calibration8bitWeight16bitActQconfigSetter], warn: false });\nqb.setFakeQuantize(c, qb.FakeQuantState.CALIBRATION);\nawait qb.calibrate(c, [x], { onProgress: () => {} });\nqb.setFakeQuantize(c, qb.FakeQuantState.VALIDATION);\ntf.tidy(() => (c.forward(x) as tf.Tensor).shape.length)";
    const samples: { cell: number; tensors: number; rssMb: number }[] = [];
    const t0 = performance.now();
    for (let i = 1; i <= 500; i++) {
      const r = await k.execute(i % 10 === 0 ? calibrateCell : `${i} * 2`);
      assert.equal(r.status, "ok", `cell ${i}: ${JSON.stringify(r.outputs).slice(0, 300)}`);
      if (i === 20 || i % 100 === 0) {
        const [tensors, rss] = value(await k.execute("mem()"))
          .replace(/'/g, "")
          .split(" ")
          .map(Number);
        samples.push({ cell: i, tensors, rssMb: rss });
      }
    }
    const ms = performance.now() - t0;
    console.log(
      `# 500 cells in ${(ms / 1000).toFixed(1)} s; numTensors / RSS MB: ${samples.map((s) => `${s.cell}: ${s.tensors} / ${s.rssMb}`).join(", ")}`,
    );
    const first = samples[0];
    const last = samples[samples.length - 1];
    assert.ok(last.tensors <= first.tensors, `numTensors grew from ${first.tensors} to ${last.tensors}`);
    assert.ok(last.rssMb - first.rssMb < RSS_GROWTH_BOUND_MB, `RSS grew from ${first.rssMb} MB to ${last.rssMb} MB`);
  });
});
