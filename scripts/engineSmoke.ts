/* eslint-disable @typescript-eslint/no-explicit-any */
import * as tf from "@tensorflow/tfjs";
import * as qb from "../src";

async function main() {
  await qb.initBackend();
  qb.setMarch(qb.March.NASH_M);
  const which = process.argv[2] ?? "resnet";
  const model = which === "mobilenet" ? new qb.examples.MobileNetV3Small() : new qb.examples.ResNet18();
  qb.examples.deterministicInit(model, 1);
  model.eval();
  const x = tf.randomNormal([1, 3, 224, 224], 0, 1, "float32", 3);
  const xs = [x, tf.randomNormal([1, 3, 224, 224], 0, 1, "float32", 4)];
  const mk = (engine: "ort" | "tfjs") =>
    qb.prepare(model, x, { qconfigSetter: [process.argv[3] === "minmax" ? qb.defaultQatQconfigSetter : qb.defaultCalibrationQconfigSetter], engine, warn: false });
  const res: Record<string, Float64Array[]> = {};
  for (const e of ["tfjs", "ort"] as const) {
    const m = mk(e);
    qb.setFakeQuantize(m, qb.FakeQuantState.CALIBRATION);
    await qb.calibrate(m, [x]);
    const t = performance.now();
    await qb.calibrate(m, xs);
    console.log(e, "calibrate", (performance.now() - t).toFixed(0), "ms");
    res[e] = qb.preparedOps(m).flatMap((o: any) => [o.output, o.weight, ...o.inputs].filter(Boolean).map((fq: any) => fq.scale()));
    qb.setFakeQuantize(m, qb.FakeQuantState.VALIDATION);
    const qa = new qb.QuantAnalysis(model, m);
    qa.sensitivity({ data: x });
    const t2 = performance.now();
    const s = qa.sensitivity({ data: x });
    console.log(
      e,
      "sensitivity",
      (performance.now() - t2).toFixed(0),
      "ms",
      s.rows
        .slice(0, 5)
        .map((r: any) => `${r.op_name}:${r.sensitive_type}:${r.value.toExponential(4)}`)
        .join(" "),
    );
  }
  let diff = 0;
  res.tfjs.forEach((a, i) => a.forEach((v, j) => (diff = Math.max(diff, Math.abs(v - res.ort[i][j]) / v))));
  console.log("scales", res.tfjs.length, "max rel diff", diff);
}
main();
