/**
 * The quantization gate (`quantbook check`) and saved plans: a model that meets its thresholds
 * passes (exit 0, JSON written), one that misses a cosine or latency threshold fails (exit 1,
 * naming what failed), a saved plan reads back into the same configuration, bad usage exits 2.
 */
import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import * as qb from "../src";
import { CheckUsageError, checkCommand } from "../cli/check";
import { run } from "../cli/main";
import { assertThrows, setup } from "./helpers";

const FIX = path.join(__dirname, "..", "..", "test", "fixtures");
const MODEL = path.join(FIX, "onnx", "mobilenet_v2_opset13.onnx");
const IMAGES = path.join(FIX, "images", "calib");
const dir = mkdtempSync(path.join(tmpdir(), "qb-check-"));

async function gate(args: string[]): Promise<{ code: number; out: string }> {
  const lines: string[] = [];
  const code = await checkCommand(args, (s) => lines.push(s));
  return { code, out: lines.join("\n") };
}

describe("quantbook check and saved plans", { timeout: 300000 }, () => {
  before(setup);
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("passes a model that meets its thresholds, and fails one that misses, naming what failed", async () => {
    const json = path.join(dir, "out.json");
    const ok = await gate([MODEL, "--march", "nash-m", "--data", IMAGES, "--limit", "4", "--json", json]);
    assert.equal(ok.code, 0, ok.out);
    assert.match(ok.out, /chip rules: pass; estimated latency [0-9.]+ ms\nPASS$/);
    const r = JSON.parse(readFileSync(json, "utf8"));
    assert.equal(r.passed, true);
    assert.equal(r.samples, 4);
    assert.ok(r.outputs[0].cosine >= 0.99);
    const strict = await gate([
      MODEL,
      "--march",
      "nash-m",
      "--data",
      IMAGES,
      "--limit",
      "4",
      "--min-cosine",
      "0.99999999",
      "--max-latency-ms",
      "0.001",
    ]);
    assert.equal(strict.code, 1);
    assert.match(strict.out, /FAIL\n {2}- output 0: cosine 0\.\d+ < 0\.99999999\n {2}- latency [0-9.]+ ms > 0\.001 ms/);
  });

  it("a plan saved from the planner reads back into the same configuration, and the gate applies it", async () => {
    qb.setMarch(qb.March.NASH_M);
    const model = await qb.io.loadOnnx(MODEL);
    const x = tf.randomNormal([1, 3, 32, 32], 0, 1, "float32", 70);
    const plan = await qb.analysis.planMixedPrecision(model, [x], {
      march: qb.March.NASH_M,
      evaluations: 4,
      onProgress: () => {},
    });
    const i = plan.rows.length - 1;
    const file = path.join(dir, "plan.json");
    plan.save(file, i);
    const saved = JSON.parse(readFileSync(file, "utf8")) as qb.analysis.SavedPlan;
    assert.equal(saved.format, "quantbook-plan");
    assert.equal(saved.base, "defaultCalibrationQconfigSetter");
    assert.equal(saved.measured_error, plan.rows[i].measured_error);
    assert.deepEqual(
      Object.keys(saved.choices).length,
      plan.rows[i].choices === "(base)" ? 0 : plan.rows[i].choices.split(" ").length,
    );
    // the same configuration: prepare through loadPlan and through setter(i) give the same dtypes
    const dtypes = (setters: qb.qconfig.QconfigSetter[], apply: <T extends qb.nn.Module>(m: T) => T) => {
      const m = qb.prepare(apply(model).eval(), x, { qconfigSetter: setters, warn: false });
      const d = qb.analysis.preparedOps(m).map((o) => `${o.info.name}:${o.output?.dtype.name}:${o.weight?.dtype.name}`);
      m.dispose();
      return d;
    };
    const loaded = qb.analysis.loadPlan(file);
    const direct = plan.setter(i);
    assert.deepEqual(dtypes(loaded.qconfigSetter, loaded.apply), dtypes(direct.qconfigSetter, direct.apply));
    assert.equal(loaded.march, qb.March.NASH_M);
    const gated = await gate([MODEL, "--march", "nash-m", "--data", IMAGES, "--limit", "2", "--plan", file]);
    assert.equal(gated.code, 0, gated.out);
    assert.match(gated.out, /with plan\.json/);
    // bad plans
    writeFileSync(path.join(dir, "bad.json"), JSON.stringify({ ...saved, choices: { "features.0.0": "int4" } }));
    await assertThrows(
      () => qb.analysis.loadPlan(path.join(dir, "bad.json")),
      /bad\.json/,
      /choice 'int4' for features\.0\.0; use one of int16, int8, rewrite, rewrite-fixed/,
    );
    writeFileSync(path.join(dir, "notjson.json"), "{");
    await assertThrows(() => qb.analysis.loadPlan(path.join(dir, "notjson.json")), /notjson\.json/, /is not JSON/);
    x.dispose();
    model.dispose();
  });

  it("bad usage is exit 2 with the usage; the command is on the CLI", async () => {
    await assertThrows(() => checkCommand([MODEL, "--data", IMAGES]), /--march is required/);
    await assertThrows(
      () => checkCommand([MODEL, "--march", "nash-q", "--data", IMAGES]),
      /--march nash-q: expected one of nash-e, nash-m, nash-p/,
    );
    await assert.rejects(checkCommand([MODEL, "--march", "nash-m"]), CheckUsageError);
    const lines: string[] = [];
    const log = console.log;
    console.log = (s: string) => lines.push(s);
    try {
      assert.equal(await run(["--help"]), 0);
    } finally {
      console.log = log;
    }
    assert.match(lines.join("\n"), /check +the quantization gate/);
  });
});
