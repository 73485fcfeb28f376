/**
 * `npm run bench`: times the steps the issues name, and the same steps in PyTorch when
 * `import torch` works, with the ratio quantbook / PyTorch. Medians of several runs.
 */
import * as tf from "@tensorflow/tfjs";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { KernelClient } from "../kernel/client";
import { kernelSpec } from "../kernel/main";
import * as qb from "../src";
import { capture, lower, type Capture, type Lowered } from "../src/workflow/engine/compile";
import { OrtSession } from "../src/workflow/engine/session";
import { engineOptions, ortModel, setEngineOptions } from "../src/workflow/engine";
import { runtimeOf } from "../src/workflow/quantRuntime";

const engineThreads = engineOptions().intraOpNumThreads;

const FIXTURES = path.join(__dirname, "..", "..", "test", "fixtures");
const RUNS = Number(process.env.BENCH_RUNS ?? 7);

async function medianMs(fn: () => unknown | Promise<unknown>, runs = RUNS): Promise<number> {
  await fn();
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    await fn();
    times.push(performance.now() - t);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

function torchTimes(): Record<string, number> | null {
  for (const py of ["python3", "/usr/bin/python3"]) {
    try {
      execFileSync(py, ["-c", "import torch"], { stdio: "ignore" });
      const out = execFileSync(py, [path.join(__dirname, "..", "..", "bench", "torch_bench.py"), String(RUNS)], {
        encoding: "utf8",
      });
      return JSON.parse(out.trim().split("\n").pop() as string);
    } catch {
      /* try the next interpreter */
    }
  }
  return null;
}

export async function benchCore(): Promise<Record<string, number>> {
  const sd = (await qb.io.loadTorch(path.join(FIXTURES, "float-checkpoint.ckpt"))) as Record<string, tf.Tensor>;
  const x = (await qb.io.loadTorch(path.join(FIXTURES, "random_data.pt"))) as tf.Tensor;
  const model = new qb.examples.SmallModel();
  model.loadStateDict(sd);
  const mul = tf.tidy(() => {
    const h = tf.relu(model.layernorm.forward(model.linear1.forward(x)));
    return tf.mul(tf.reshape(h, [2, 100, 1, 256]), tf.reshape(sd["linear2.weight"], [1, 1, 60, 256]));
  });
  const out: Record<string, number> = {};
  out["fake-quant int16 [2,100,60,256]"] = await medianMs(() =>
    qb.quant.fakeQuantize(mul, { scale: 0.01, dtype: qb.qint16 }).dispose(),
  );
  const calib = qb.prepare(model.eval(), x, { qconfigSetter: [qb.qconfig.calibration8bitWeight16bitActQconfigSetter] });
  qb.setFakeQuantize(calib, qb.FakeQuantState.CALIBRATION);
  out["calibration pass, article model"] = await medianMs(() => qb.calibrate(calib, [x], { onProgress: () => {} }));
  const obs = new qb.quant.MSEObserver({ dtype: qb.qint16 });
  out["MSE observer on the mul output"] = await medianMs(() => obs.observe(mul), Math.max(1, Math.floor(RUNS / 2)));
  qb.setFakeQuantize(calib, qb.FakeQuantState.VALIDATION);
  out["export, article model"] = await medianMs(() => qb.export(calib, x), 3);
  const ir = qb.export(calib, x);
  out["convert, article model"] = await medianMs(() => qb.convert(ir, qb.March.NASH_M), 3);
  const hb = qb.convert(ir, qb.March.NASH_M);
  out["integer model forward, article model"] = await medianMs(() => hb.forward(x).dispose(), 3);
  const qa = new qb.analysis.QuantAnalysis(model, calib);
  const quiet = () => {};
  out["sensitivity, article model"] = await medianMs(() => qa.sensitivity({ data: x, onProgress: quiet }), 3);
  out["sensitivity, no float reuse"] = await medianMs(
    () => qa.sensitivity({ data: x, reuseFloat: false, onProgress: quiet }),
    3,
  );
  calib.dispose();
  model.dispose();
  mul.dispose();
  x.dispose();
  qb.io.disposeAll(sd);
  return out;
}

/**
 * ResNet-18 and MobileNetV3-Small at 1×3×224×224 (deterministic weights): float forward, one
 * calibration pass (MSE observers on every op output), full sensitivity (every activation and
 * weight point). PyTorch does the same steps in bench/torch_bench.py.
 */
export async function benchModels(runs = Number(process.env.BENCH_MODEL_RUNS ?? 1)): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  const x = tf.randomUniform([1, 3, 224, 224], -1, 1, "float32", 3);
  const quiet = () => {};
  for (const [name, make] of [
    ["resnet18", () => new qb.examples.ResNet18()],
    ["mobilenet_v3_small", () => new qb.examples.MobileNetV3Small()],
  ] as const) {
    const float = qb.examples.deterministicInit(make().eval());
    out[`${name}: float forward`] = await medianMs(() => tf.dispose(float.forward(x)), Math.max(runs, 3));
    for (const engine of ["ort", "tfjs"] as const) {
      const tag = engine === "ort" ? "" : " (tfjs engine)";
      for (const [setter, what] of [
        [qb.qconfig.defaultQatQconfigSetter, "calibration pass, MinMax"],
        [qb.qconfig.calibration8bitWeight16bitActQconfigSetter, "calibration pass"],
      ] as const) {
        const calib = qb.prepare(float, x, { qconfigSetter: [setter], warn: false, engine });
        qb.setFakeQuantize(calib, qb.FakeQuantState.CALIBRATION);
        out[`${name}: ${what}${tag}`] = await medianMs(
          () => qb.calibrate(calib, [x], { onProgress: quiet }),
          Math.max(runs, 3),
        );
        if (what !== "calibration pass") {
          calib.dispose();
          continue;
        }
        qb.setFakeQuantize(calib, qb.FakeQuantState.VALIDATION);
        const rt = runtimeOf(calib, "bench");
        if (engine === "ort") {
          // onnxruntime's float forward of the same graph (no fake-quantizers), one thread: the reference of the ratios
          const cap = capture(calib, rt, [x]) as Capture;
          setEngineOptions({ intraOpNumThreads: 1 });
          const plain = new OrtSession((lower(rt, cap, { plain: true }) as Lowered).bytes);
          const feed = { "input:0": { type: "float32" as const, data: x.dataSync() as Float32Array, dims: x.shape } };
          out[`${name}: onnxruntime float forward (1 thread)`] = await medianMs(() => plain.run(feed, ["output:0"]), 5);
          const fast1 = ortModel(calib, rt, [x]) as NonNullable<ReturnType<typeof ortModel>>;
          out[`${name}: fake-quant forward (1 thread)`] = await medianMs(
            () => tf.dispose(fast1.forward([x], () => true)),
            5,
          );
          plain.dispose();
          setEngineOptions({ intraOpNumThreads: engineThreads });
          const fast = ortModel(calib, rt, [x]) as NonNullable<ReturnType<typeof ortModel>>;
          out[`${name}: fake-quant forward`] = await medianMs(() => tf.dispose(fast.forward([x], () => true)), 5);
        } else out[`${name}: fake-quant forward (tfjs engine)`] = await medianMs(() => tf.dispose(calib.forward(x)), 3);
        const qa = new qb.analysis.QuantAnalysis(float, calib, { onProgress: quiet });
        out[`${name}: sensitivity${tag}`] = await medianMs(() => qa.sensitivity({ data: x, onProgress: quiet }), runs);
        calib.dispose();
      }
    }
    float.dispose();
  }
  x.dispose();
  return out;
}

/** One run (for steps too slow to repeat: the planner, a tfjs sensitivity of a large model). */
async function onceMs(fn: () => unknown | Promise<unknown>): Promise<number> {
  const t = performance.now();
  await fn();
  return performance.now() - t;
}

/** Peak RSS (MB) of a fresh Node process that runs `body` (the body of an async function, CommonJS). */
function peakRssMb(body: string): number {
  const script = `(async () => { ${body} })().then(() => console.log("RSS " + process.resourceUsage().maxRSS / 1024));`;
  const out = execFileSync(process.execPath, ["-e", script], {
    encoding: "utf8",
    cwd: path.join(__dirname, ".."),
    env: { ...process.env, QUANTBOOK_ENGINE: "ort" },
  });
  return Number(/RSS ([\d.]+)/.exec(out)?.[1] ?? NaN);
}

/** The models tfjs-wasm takes too long to run a whole sensitivity on: its time is estimated from one fake-quant forward per point. */
const TFJS_SENSITIVITY_MAX_FLOPS = 3e9;

/**
 * The bench models exported by PyTorch (bench/bench_models.py: ResNet-18 and MobileNetV3-Small at
 * 224×224, a U-Net at 512×512), imported: import, float forward, onnxruntime's own float forward
 * (one thread: the reference of every ratio), calibration passes (MinMax, MSE), fake-quant
 * forward, sensitivity on both engines, the planner on NASH_M, and peak RSS against onnxruntime
 * alone. PyTorch's times for the same models and steps come from bench/torch_bench.py.
 */
export async function benchOnnx(runs = Number(process.env.BENCH_MODEL_RUNS ?? 1)): Promise<Record<string, number>> {
  const dir = mkdtempSync(path.join(tmpdir(), "qb-bench-onnx-"));
  try {
    execFileSync("/usr/bin/python3", [path.join(__dirname, "..", "..", "bench", "export_models.py"), dir], {
      stdio: "ignore",
    });
  } catch {
    console.log(
      "ONNX bench skipped: /usr/bin/python3 cannot export torchvision models (apt-get install python3-torch python3-torchvision)",
    );
    return {};
  }
  const ort = require("onnxruntime-node") as typeof import("onnxruntime-node");
  const out: Record<string, number> = {};
  const quiet = () => {};
  const models = JSON.parse(readFileSync(path.join(dir, "index.json"), "utf8")) as Record<string, number[]>;
  for (const [name, shape] of Object.entries(models)) {
    const k = (step: string) => `onnx ${name}: ${step}`;
    const file = path.join(dir, `${name}.onnx`);
    const x = tf.randomUniform(shape, -1, 1, "float32", 3);
    let model: Awaited<ReturnType<typeof qb.io.loadOnnx>> | null = null;
    out[k("import")] = await medianMs(async () => {
      model?.dispose();
      model = await qb.io.loadOnnx(file);
    }, 3);
    const m = model as unknown as Awaited<ReturnType<typeof qb.io.loadOnnx>>;
    const session = await ort.InferenceSession.create(file, { intraOpNumThreads: 1 });
    const feeds = { [session.inputNames[0]]: new ort.Tensor("float32", x.dataSync() as Float32Array, x.shape) };
    out[k("onnxruntime float forward (1 thread)")] = await medianMs(() => session.run(feeds), 5);
    await session.release();
    out[k("float forward (tfjs)")] = await medianMs(() => tf.dispose(m.forward(x) as unknown as tf.Tensor), 1);
    for (const [setter, what] of [
      [qb.qconfig.defaultQatQconfigSetter, "calibration pass, MinMax"],
      [qb.qconfig.defaultCalibrationQconfigSetter, "calibration pass"],
    ] as const) {
      const calib = qb.prepare(m.eval(), x, { qconfigSetter: [setter], warn: false, engine: "ort" });
      qb.setFakeQuantize(calib, qb.FakeQuantState.CALIBRATION);
      out[k(what)] = await medianMs(() => qb.calibrate(calib, [x], { onProgress: quiet }), Math.max(runs, 3));
      if (what === "calibration pass") {
        qb.setFakeQuantize(calib, qb.FakeQuantState.VALIDATION);
        const rt = runtimeOf(calib, "bench");
        const fast = ortModel(calib, rt, [x]) as NonNullable<ReturnType<typeof ortModel>>;
        out[k("fake-quant forward")] = await medianMs(() => tf.dispose(fast.forward([x], () => true)), 5);
        setEngineOptions({ intraOpNumThreads: 1 });
        const fast1 = ortModel(calib, rt, [x]) as NonNullable<ReturnType<typeof ortModel>>;
        out[k("fake-quant forward (1 thread)")] = await medianMs(() => tf.dispose(fast1.forward([x], () => true)), 5);
        setEngineOptions({ intraOpNumThreads: engineThreads });
        const qa = new qb.analysis.QuantAnalysis(m, calib, { onProgress: quiet });
        out[k("sensitivity")] = await medianMs(() => qa.sensitivity({ data: x, onProgress: quiet }), runs);
        const points = qa.sensitivity({ data: x, onProgress: quiet }).rows.length;
        out[k("sensitivity points")] = points;
        const tfjs = qb.prepare(m.eval(), x, { qconfigSetter: [setter], warn: false, engine: "tfjs" });
        qb.setFakeQuantize(tfjs, qb.FakeQuantState.CALIBRATION);
        out[k("calibration pass (tfjs engine)")] = await onceMs(() => qb.calibrate(tfjs, [x], { onProgress: quiet }));
        qb.setFakeQuantize(tfjs, qb.FakeQuantState.VALIDATION);
        out[k("fake-quant forward (tfjs engine)")] = await medianMs(
          () => tf.dispose(tfjs.forward(x) as unknown as tf.Tensor),
          1,
        );
        const flops = rt.graph.ops.reduce((a, o) => a + o.flops, 0);
        out[
          k(flops <= TFJS_SENSITIVITY_MAX_FLOPS ? "sensitivity (tfjs engine)" : "sensitivity (tfjs engine, estimated)")
        ] =
          flops <= TFJS_SENSITIVITY_MAX_FLOPS
            ? await onceMs(() =>
                new qb.analysis.QuantAnalysis(m, tfjs, { onProgress: quiet }).sensitivity({
                  data: x,
                  onProgress: quiet,
                }),
              )
            : points * out[k("fake-quant forward (tfjs engine)")];
        tfjs.dispose();
      }
      calib.dispose();
    }
    out[k("planner, NASH_M")] = await onceMs(() =>
      qb.analysis.planMixedPrecision(m, [x], { march: qb.March.NASH_M, onProgress: quiet }),
    );
    m.dispose();
    x.dispose();
    const dist = JSON.stringify(path.join(__dirname, "..", "src"));
    out[k("peak RSS, onnxruntime alone (MB)")] = peakRssMb(
      `const ort = require("onnxruntime-node"); const s = await ort.InferenceSession.create(${JSON.stringify(file)}, { intraOpNumThreads: 1 }); ` +
        `await s.run({ [s.inputNames[0]]: new ort.Tensor("float32", new Float32Array(${shape.reduce((a, b) => a * b, 1)}), ${JSON.stringify(shape)}) });`,
    );
    out[k("peak RSS, quantbook (MB)")] = peakRssMb(
      `const qb = require(${dist}); qb.setMarch(qb.March.NASH_M); const m = await qb.io.loadOnnx(${JSON.stringify(file)}); ` +
        `const x = qb.tf.randomUniform(${JSON.stringify(shape)}, -1, 1, "float32", 3); const c = qb.prepare(m.eval(), x, { qconfigSetter: [qb.qconfig.defaultCalibrationQconfigSetter], warn: false }); ` +
        `qb.setFakeQuantize(c, qb.FakeQuantState.CALIBRATION); await qb.calibrate(c, [x]); qb.setFakeQuantize(c, qb.FakeQuantState.VALIDATION); ` +
        `new qb.analysis.QuantAnalysis(m, c).sensitivity({ data: x, onProgress: () => {} });`,
    );
  }
  rmSync(dir, { recursive: true, force: true });
  return out;
}

/** Kernel process start → first execute_result, through the Node Jupyter client. */
async function kernelFirstResultMs(): Promise<number> {
  const t0 = performance.now();
  const client = await KernelClient.start(kernelSpec().argv as string[], path.join(__dirname, "..", "..", "notebooks"));
  await client.execute("1 + 1");
  const ms = performance.now() - t0;
  await client.shutdown();
  return ms;
}

async function main(): Promise<void> {
  const backend = await qb.backend.init();
  qb.setMarch(qb.March.NASH_M);
  console.log(`quantbook bench (backend ${backend}, median of ${RUNS} runs)`);
  const ours = await benchCore();
  ours["kernel start to first result"] = await medianMs(kernelFirstResultMs, 3);
  if (process.env.BENCH_MODELS !== "0") Object.assign(ours, await benchModels(), await benchOnnx());
  const torch = torchTimes();
  console.log(torch ? "PyTorch timings from bench/torch_bench.py" : "PyTorch not importable: quantbook timings only");
  const rows = Object.entries(ours).map(([name, ms]) => {
    const ref = torch?.[name];
    return {
      step: name,
      quantbook_ms: ms.toFixed(2),
      pytorch_ms: ref === undefined ? "-" : ref.toFixed(2),
      ratio: ref === undefined ? "-" : (ms / ref).toFixed(2),
    };
  });
  console.table(rows);
  const reuse = ours["sensitivity, no float reuse"] / ours["sensitivity, article model"];
  console.log(`sensitivity: reusing float activations is ${reuse.toFixed(2)}x faster than recomputing every op`);
  for (const name of ["resnet18", "mobilenet_v3_small"]) {
    const ref = ours[`${name}: onnxruntime float forward (1 thread)`];
    if (ref === undefined) continue;
    const r = (k: string) => (ours[`${name}: ${k}`] / ref).toFixed(2);
    console.log(
      `${name}, × onnxruntime's float forward (1 thread): fake-quant forward ${r("fake-quant forward (1 thread)")} (1 thread), ${r("fake-quant forward")} (${engineThreads} threads; tfjs engine ${r("fake-quant forward (tfjs engine)")}); ` +
        `sensitivity ${r("sensitivity")} (tfjs engine ${r("sensitivity (tfjs engine)")}, speed-up ${(ours[`${name}: sensitivity (tfjs engine)`] / ours[`${name}: sensitivity`]).toFixed(1)}×)`,
    );
  }
  // the imported real models: every step against onnxruntime's float forward (1 thread) and PyTorch doing the same step
  for (const name of ["resnet18", "mobilenet_v3_small", "unet512"]) {
    const get = (step: string) => ours[`onnx ${name}: ${step}`];
    const ref = get("onnxruntime float forward (1 thread)");
    if (ref === undefined) continue;
    const torchStep: Record<string, string> = {
      "float forward (tfjs)": "float forward",
      "calibration pass, MinMax": "calibration pass, MinMax",
      "calibration pass": "calibration pass",
      sensitivity: "sensitivity",
    };
    const steps = Object.keys(ours)
      .filter((k) => k.startsWith(`onnx ${name}: `) && !k.includes("RSS") && !k.endsWith("points"))
      .map((k) => k.slice(`onnx ${name}: `.length));
    console.log(`\n${name} (imported from ONNX; ${get("sensitivity points")} sensitivity points)`);
    console.table(
      steps.map((step) => {
        const ms = get(step);
        const py = torchStep[step] === undefined ? undefined : torch?.[`${name}: ${torchStep[step]}`];
        return {
          step,
          quantbook_ms: ms.toFixed(1),
          "× ORT float (1 thread)": (ms / ref).toFixed(2),
          pytorch_ms: py === undefined ? "-" : py.toFixed(1),
          "× PyTorch": py === undefined ? "-" : (ms / py).toFixed(2),
        };
      }),
    );
    const tfjsSens = get("sensitivity (tfjs engine)") ?? get("sensitivity (tfjs engine, estimated)");
    console.log(
      `${name}: sensitivity ${(get("sensitivity") / 1000).toFixed(1)} s, ${(tfjsSens / get("sensitivity")).toFixed(1)}× faster than the tfjs engine` +
        `${get("sensitivity (tfjs engine)") === undefined ? " (its time estimated as points × one fake-quant forward)" : ""}; ` +
        `peak RSS ${get("peak RSS, quantbook (MB)").toFixed(0)} MB vs onnxruntime alone ${get("peak RSS, onnxruntime alone (MB)").toFixed(0)} MB (${(get("peak RSS, quantbook (MB)") / get("peak RSS, onnxruntime alone (MB)")).toFixed(2)}×)`,
    );
  }
  console.log(`peak RSS of this process: ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MB`);
}

if (require.main === module) {
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
