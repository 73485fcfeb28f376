/**
 * `npm run zoo [-- FILTER]`: exports torchvision's architectures and two attention models at
 * opsets 9, 11, 13 and 17 (bench/onnx_zoo.py, Debian's python3-torch and python3-torchvision),
 * then for every file: import, float output against onnxruntime (the first diverging node named
 * on a mismatch), and the whole workflow — prepare, calibrate, export, chip check, convert,
 * integer against fake-quant, perf. Not part of `npm test` (the files are hundreds of MB).
 */
import * as tf from "@tensorflow/tfjs";
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import * as path from "node:path";
import * as ort from "onnxruntime-node";
import * as qb from "../src";
import { firstDivergence, relErr } from "../test/onnxOracle";

const ROOT = path.join(__dirname, "..", "..");
const OUT = process.env.ZOO_DIR ?? path.join(ROOT, "tmp", "zoo");

interface Entry {
  file: string;
  inputs: { file: string; shape: number[]; int: boolean }[];
}

const maxAbs = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
};

async function check(name: string, e: Entry): Promise<Record<string, string>> {
  const xs: tf.Tensor[] = [];
  const feeds: Record<string, ort.Tensor> = {};
  const session = await ort.InferenceSession.create(e.file, { intraOpNumThreads: 1 });
  e.inputs.forEach((inp, k) => {
    const raw = readFileSync(inp.file);
    const n = inp.shape.reduce((a, b) => a * b, 1);
    if (inp.int) {
      const ids = new BigInt64Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + 8 * n));
      xs.push(tf.tensor(Int32Array.from(ids, Number), inp.shape, "int32"));
      feeds[session.inputNames[k]] = new ort.Tensor("int64", ids, inp.shape);
    } else {
      const f = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + 4 * n));
      xs.push(tf.tensor(f, inp.shape));
      feeds[session.inputNames[k]] = new ort.Tensor("float32", f, inp.shape);
    }
  });
  const x = xs.length === 1 ? xs[0] : xs;
  const forward = (m: { forward(...a: tf.Tensor[]): unknown }) => tf.tidy(() => m.forward(...xs) as tf.Tensor);
  const row: Record<string, string> = { model: name };
  const t0 = performance.now();
  let m: qb.io.OnnxGraphModule;
  try {
    m = await qb.io.loadOnnx(e.file);
  } catch (err) {
    tf.dispose(xs);
    return { ...row, float: `import failed: ${(err as Error).message.slice(0, 200)}` };
  }
  row.import_ms = (performance.now() - t0).toFixed(0);
  let stage = "float";
  try {
    const theirs = (await session.run(feeds))[session.outputNames[0]].data as Float32Array;
    const ours = forward(m).dataSync();
    const rel = relErr(ours, theirs);
    row.float_vs_ort = rel.toExponential(1);
    if (rel > 1e-4 && xs.length === 1 && !e.inputs[0].int) {
      const d = await firstDivergence(e.file, m, xs[0]);
      row.float_vs_ort += d ? ` (first diverging: ${d.node})` : "";
    }
    const scaleOf = Math.max(...Array.from(theirs, Math.abs));
    stage = "prepare";
    const c = qb.prepare(m.eval(), x, { qconfigSetter: [qb.qconfig.defaultCalibrationQconfigSetter], warn: false });
    stage = "calibrate";
    qb.setFakeQuantize(c, qb.FakeQuantState.CALIBRATION);
    await qb.calibrate(c, [x]);
    qb.setFakeQuantize(c, qb.FakeQuantState.VALIDATION);
    const fq = forward(c).dataSync();
    row.fq_vs_float = (maxAbs(fq, theirs) / scaleOf).toExponential(1);
    stage = "export";
    const ir = qb.export(c, x);
    stage = "checkModel";
    row.violations = String(qb.march.checkModel(ir, qb.March.NASH_M).violations.length);
    stage = "convert";
    const hb = qb.convert(ir, qb.March.NASH_M);
    const yi = forward(hb).dataSync();
    row.int_vs_fq = (maxAbs(yi, fq) / scaleOf).toExponential(1);
    stage = "perf";
    row.nash_m_ms = qb.march.perf(ir, qb.March.NASH_M).latencyMs.toFixed(3);
    row.ir_nodes = String(ir.nodes.length);
  } catch (err) {
    row.failed = `${stage}: ${(err as Error).message.slice(0, 200)}`;
  } finally {
    m.dispose();
    tf.dispose(xs);
  }
  return row;
}

async function main(): Promise<void> {
  if (!existsSync(path.join(OUT, "index.json")) || process.env.ZOO_EXPORT === "1") {
    console.log(`exporting the zoo into ${OUT} (a few minutes) ...`);
    execFileSync("/usr/bin/python3", [path.join(ROOT, "bench", "onnx_zoo.py"), OUT], {
      stdio: ["ignore", "inherit", "ignore"],
    });
  }
  await qb.backend.init();
  qb.setMarch(qb.March.NASH_M);
  const index = JSON.parse(readFileSync(path.join(OUT, "index.json"), "utf8")) as Record<string, Entry>;
  const filter = process.argv[2] ? new RegExp(process.argv[2]) : null;
  const rows: Record<string, string>[] = [];
  for (const [name, e] of Object.entries(index)) {
    if (filter && !filter.test(name)) continue;
    const row = await check(name, e);
    console.log(JSON.stringify(row));
    rows.push(row);
  }
  console.table(rows);
  const bad = rows.filter(
    (r) => r.failed || !r.float_vs_ort || Number(r.float_vs_ort.split(" ")[0]) > 1e-4 || r.violations !== "0",
  );
  console.log(
    `${rows.length - bad.length}/${rows.length} graphs import, match onnxruntime within 1e-4 and pass the whole workflow on NASH_M`,
  );
  if (bad.length > 0) process.exit(1);
}

if (require.main === module) {
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
