/* eslint-disable @typescript-eslint/no-explicit-any */
import * as tf from "@tensorflow/tfjs";
import * as qb from "../src";
import { capture, lower, Lowered } from "../src/workflow/engine/compile";
import { OrtSession, setEngineOptions } from "../src/workflow/engine/session";
import { ortModel } from "../src/workflow/engine";
import { runtimeOf } from "../src/workflow/quantRuntime";

function time(fn: () => void, n = 10) {
  fn();
  const t = performance.now();
  for (let i = 0; i < n; i++) fn();
  return (performance.now() - t) / n;
}

async function main() {
  await qb.initBackend();
  qb.setMarch(qb.March.NASH_M);
  const model = process.argv[2] === "mobilenet" ? new qb.examples.MobileNetV3Small() : new qb.examples.ResNet18();
  qb.examples.deterministicInit(model, 1);
  model.eval();
  const x = tf.randomNormal([1, 3, 224, 224], 0, 1, "float32", 3);
  const m = qb.prepare(model, x, { qconfigSetter: [qb.defaultQatQconfigSetter], warn: false, engine: "ort" });
  qb.setFakeQuantize(m, qb.FakeQuantState.CALIBRATION);
  await qb.calibrate(m, [x]);
  qb.setFakeQuantize(m, qb.FakeQuantState.VALIDATION);
  const rt = runtimeOf(m, "p");
  const cap = capture(m, rt, [x]) as any;
  for (const level of ["basic", "all"] as const) {
    for (const threads of [1, 2]) {
      setEngineOptions({ graphOptimizationLevel: level, intraOpNumThreads: threads });
      const plain = lower(rt, cap, false, true) as Lowered;
      const sp = new OrtSession(plain.bytes);
      const xd = { type: "float32" as const, data: x.dataSync() as Float32Array, dims: x.shape };
      const tp = time(() => sp.run({ "input:0": xd }, ["output:0"]));
      const om = ortModel(m, rt, [x])!;
      const toff = time(() => tf.dispose(om.forward([x], () => false)));
      const ton = time(() => tf.dispose(om.forward([x], () => true)));
      const tone = time(() => tf.dispose(om.forward([x], (s) => s === om.slots[5])));
      console.log(
        level,
        "threads",
        threads,
        "plain",
        tp.toFixed(1),
        "fq-off",
        toff.toFixed(1),
        "fq-on",
        ton.toFixed(1),
        "one on",
        tone.toFixed(1),
        "ratio on/plain",
        (ton / tp).toFixed(2),
      );
    }
  }
}
main();
