/**
 * quantbook as a dependency of someone else's project: `npm pack`, then `npm install` of the
 * tarball into a fresh project outside the checkout, on an empty npm cache and without the
 * checkout's npm settings — nothing may be fetched from outside the registry, and no override of
 * the user's own is needed. Then the user's scripts run against it: CommonJS, ESM, TypeScript
 * compiled by tsc (each public result assigned to a `const`, so every returned type must be
 * nameable), and the `quantbook` bin through npx — the CI gate on a real model.
 */
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";

const ROOT = path.join(__dirname, "..", "..");
const FIX = path.join(ROOT, "test", "fixtures");
const dir = mkdtempSync(path.join(tmpdir(), "qb-consumer-"));
const project = path.join(dir, "project");

/** How this machine reaches the registry: kept, whoever set it (the rest of npm's settings are the checkout's, and go). */
const NETWORK = /^npm_config_(registry|cafile|ca|proxy|https_proxy|noproxy|strict_ssl|replace_registry_host)$/i;

/** The environment of a user's shell: none of the settings `npm test` passes from the checkout (ignore-scripts above all). */
function userEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    // lower case npm_*: what npm passes to scripts; upper case NPM_CONFIG_* is the user's own
    const npmSetting = /^npm_/.test(k);
    if ((!npmSetting || NETWORK.test(k)) && k !== "INIT_CWD" && k !== "NODE_OPTIONS") env[k] = v;
  }
  return { ...env, QUANTBOOK_PROGRESS: "off" };
}

function run(cmd: string, args: string[], cwd = project): { code: number; out: string; stdout: string } {
  const r = spawnSync(cmd, args, { cwd, env: userEnv(), encoding: "utf8", timeout: 300000 });
  return { code: r.status ?? -1, out: `${r.stdout ?? ""}${r.stderr ?? ""}`, stdout: r.stdout ?? "" };
}

const CJS = `const qb = require("quantbook");
(async () => {
  qb.setMarch(qb.March.NASH_M);
  const model = new qb.examples.SmallModel().eval();
  const x = qb.tf.randomNormal([4, 10, 256], 0, 1, "float32", 1);
  const calib = qb.prepare(model, x, { qconfigSetter: [qb.qconfig.defaultCalibrationQconfigSetter] });
  qb.setFakeQuantize(calib, qb.FakeQuantState.CALIBRATION);
  await qb.calibrate(calib, [x]);
  qb.setFakeQuantize(calib, qb.FakeQuantState.VALIDATION);
  const table = new qb.analysis.QuantAnalysis(model, calib).sensitivity({ data: x });
  let frame = "";
  try { table.toDataFrame(); } catch (e) { frame = e.code; }
  console.log(JSON.stringify({ worst: table.rows[0].op_name, rows: table.rows.length, frame, backend: qb.backend.active() }));
})().catch((e) => { console.error(e); process.exit(1); });
`;

const ESM = `import * as qb from "quantbook";
import def from "quantbook";
// before any quantbook call: the backend it will compute with, not undefined
const before = qb.backend.active();
const x = qb.tf.ones([2, 3]);
console.log(JSON.stringify({ named: typeof qb.prepare, io: typeof qb.io.loadOnnx, march: qb.March.NASH_E, same: def.prepare === qb.prepare, shape: x.shape, before }));
`;

const TS = `import * as qb from "quantbook";

async function main(): Promise<void> {
  qb.setMarch(qb.March.NASH_M);
  const model = new qb.examples.SmallModel().eval();
  const x: qb.tf.Tensor = qb.tf.randomNormal([4, 10, 256], 0, 1, "float32", 1);
  const calib = qb.prepare(model, x, { qconfigSetter: [qb.qconfig.defaultCalibrationQconfigSetter] });
  qb.setFakeQuantize(calib, qb.FakeQuantState.CALIBRATION);
  const done = await qb.calibrate(calib, [x]);
  qb.setFakeQuantize(calib, qb.FakeQuantState.VALIDATION);
  const sum = qb.analysis.quantSummary(calib);
  const check = qb.march.checkModel(calib, qb.March.NASH_M);
  const ir = qb.export(calib, x);
  const perf = qb.march.perf(ir);
  const qa = new qb.analysis.QuantAnalysis(model, calib);
  const sens = qa.sensitivity({ data: x });
  const ev = await qb.analysis.evaluate(calib, [x]);
  const y = calib.forward(x);
  console.log(JSON.stringify({ batches: done.batches, summary: sum.rows.length, ok: check.ok, latency: perf.latencyMs > 0, worst: sens.rows[0].op_name, passed: ev.passed, shape: y.shape }));
}
main();
`;

/** Compiled with declaration output, never run: each public result in a const, so every returned type must be nameable from the user's project. */
const TYPES = `import * as qb from "quantbook";

// compiled, never run: each public result in a const, so every returned type must be nameable
export async function everyResult(model: qb.nn.Module, calib: qb.nn.Module, x: qb.tf.Tensor, file: string) {
  const onnx = await qb.io.loadOnnx(file);
  const out = onnx.forward(x);
  const sd = await qb.io.loadTorch(file);
  const npy = await qb.io.loadNpy(file);
  const images = qb.data.imageFolder(file, { batchSize: 2 });
  const folder = qb.data.npyFolder(file);
  const batches = await images.take(1);
  const prepared = qb.prepare(model, x, { qconfigSetter: [qb.qconfig.defaultCalibrationQconfigSetter] });
  const done = await qb.calibrate(prepared, images);
  const sum = qb.analysis.quantSummary(calib);
  const check = qb.march.checkModel(calib, qb.March.NASH_M);
  const ir = qb.export(calib, x);
  const hb = qb.convert(ir, qb.March.NASH_M);
  const perf = qb.march.perf(ir);
  const qa = new qb.analysis.QuantAnalysis(model, calib);
  const sens = qa.sensitivity({ data: x });
  const streamed = await qa.sensitivity({ batches: folder });
  const stats = qa.statistics({ data: x });
  const layers = qa.comparePerLayer({ data: x });
  const curve = qa.cumulativeError({ data: x });
  const spec = curve.plot();
  const advice = qa.advisor({ data: x });
  const explorer = qb.analysis.scaleExplorer(calib, "linear2.mul", { data: x });
  const ev = await qb.analysis.evaluate(calib, images, { task: "classification" });
  const choice = await qb.analysis.chooseCalibration(model, [x]);
  const bias = qb.analysis.biasCorrection(calib, [x]);
  const plan = await qb.analysis.planMixedPrecision(model, [x], { march: qb.March.NASH_M });
  const saved = plan.toJSON();
  const loaded = qb.analysis.loadPlan(saved);
  const setter = plan.setter(0);
  const yaml = qb.deploy.ptqYaml(calib, { data: images });
  const names = qb.deploy.onnxNames(calib);
  const info = qb.deploy.nodeInfo(calib);
  const params = qb.deploy.inputParameters(images, calib);
  const qdq = qb.deploy.qdqOnnx(calib, x);
  const snippet = qb.deploy.pluginSnippet(calib);
  const decision = qb.backend.engine(calib);
  const frame = sens.toDataFrame();
  const records = sens.toRecords();
  const backend = qb.backend.active();
  return [out, sd, npy, batches, done, sum, check, hb, perf, streamed, stats, layers, spec, advice, explorer, ev, choice, bias, loaded, setter, yaml, names, info, params, qdq, snippet, decision, frame, records, backend];
}
`;

describe("quantbook installed into another project", { timeout: 600000 }, () => {
  let installMs = 0;
  before(() => {
    const t0 = performance.now();
    execFileSync("npm", ["pack", "--pack-destination", dir], { cwd: ROOT, env: userEnv(), stdio: "pipe" });
    const tarball = readdirSync(dir).find((f) => f.endsWith(".tgz")) as string;
    execFileSync("mkdir", ["-p", project]);
    writeFileSync(
      path.join(project, "package.json"),
      JSON.stringify({ name: "my-model", version: "1.0.0", private: true }),
    );
    const r = run("npm", [
      "install",
      path.join(dir, tarball),
      "typescript@5.4.5",
      "--cache",
      path.join(dir, "cache"),
      "--no-audit",
      "--no-fund",
    ]);
    assert.equal(r.code, 0, r.out);
    installMs = performance.now() - t0;
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("installs from the registry alone, with no override and no GPU or CDN download", (t) => {
    t.diagnostic(`npm pack + npm install on an empty cache: ${(installMs / 1000).toFixed(1)} s`);
    const installed = readdirSync(path.join(project, "node_modules"));
    assert.ok(installed.includes("quantbook"));
    // neither optional peer is installed for the user: danfojs-node (xlsx from a CDN) and onnxruntime-node (GPU download)
    assert.ok(!installed.includes("danfojs-node") && !installed.includes("xlsx"), "danfojs-node came along");
    assert.ok(!installed.includes("onnxruntime-node"), "onnxruntime-node came along");
    assert.ok(existsSync(path.join(project, "node_modules", ".bin", "quantbook")));
  });

  it("runs a CommonJS script: the whole flow on the wasm backend, and toDataFrame() names the package it needs", () => {
    writeFileSync(path.join(project, "flow.cjs"), CJS);
    const r = run("node", ["flow.cjs"]);
    assert.equal(r.code, 0, r.out);
    const got = JSON.parse(r.stdout.trim().split("\n").pop() as string);
    assert.equal(got.rows, 16);
    assert.equal(got.frame, "MISSING_PACKAGE");
    assert.equal(got.backend, "wasm");
  });

  it("runs an ES module: named and default imports are the same quantbook", () => {
    writeFileSync(path.join(project, "flow.mjs"), ESM);
    const r = run("node", ["flow.mjs"]);
    assert.equal(r.code, 0, r.out);
    assert.deepEqual(JSON.parse(r.stdout.trim()), {
      named: "function",
      io: "function",
      march: "nash-e",
      same: true,
      shape: [2, 3],
      before: "wasm",
    });
  });

  it("compiles TypeScript with tsc (every public result assigned to a const, declarations emitted) and runs it", () => {
    writeFileSync(path.join(project, "flow.ts"), TS);
    writeFileSync(path.join(project, "types.ts"), TYPES);
    writeFileSync(
      path.join(project, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: {
          target: "ES2022",
          module: "commonjs",
          strict: true,
          declaration: true,
          skipLibCheck: true,
          outDir: "out",
        },
        files: ["flow.ts", "types.ts"],
      }),
    );
    const c = run("npx", ["tsc", "-p", "tsconfig.json"]);
    assert.equal(c.code, 0, c.out);
    const r = run("node", [path.join("out", "flow.js")]);
    assert.equal(r.code, 0, r.out);
    const got = JSON.parse(r.stdout.trim().split("\n").pop() as string);
    assert.deepEqual(got.shape, [4, 10, 60]);
    assert.equal(got.batches, 1);
    assert.equal(got.latency, true);
  });

  it("npx quantbook check gates a real model on a folder of images", () => {
    const r = run("npx", [
      "quantbook",
      "check",
      path.join(FIX, "onnx", "mobilenet_v2_opset13.onnx"),
      "--march",
      "nash-m",
      "--data",
      path.join(FIX, "images", "calib"),
      "--limit",
      "4",
    ]);
    assert.equal(r.code, 0, r.out);
    assert.match(r.stdout, /chip rules: pass; estimated latency [0-9.]+ ms\nPASS\s*$/);
  });
});
