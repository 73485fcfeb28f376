/**
 * `npm run bench:int`: the integer model's forward (HbModel, bit-exact integer arithmetic) against
 * the fake-quant forward of the same calibrated model, per 224×224 image, on ResNet-18 and
 * MobileNetV3 (quantbook's DSL builds; random weights, deterministic). Prints the times and the
 * ratio; the target is at most ~3×.
 */
import * as qb from "../src";

const tf = qb.tf;

async function medianMs(fn: () => void, n: number): Promise<number> {
  const t: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    fn();
    t.push(performance.now() - t0);
  }
  return t.sort((a, b) => a - b)[Math.floor(n / 2)];
}

async function main(): Promise<void> {
  await qb.backend.init();
  qb.setMarch(qb.March.NASH_M);
  qb.nn.manualSeed(0);
  for (const [name, make] of [
    ["resnet18", () => new qb.examples.ResNet18()],
    ["mobilenetv3", () => new qb.examples.MobileNetV3Small()],
  ] as const) {
    const model = make().eval();
    const x = tf.randomNormal([1, 3, 224, 224], 0, 1, "float32", 1);
    const calib = qb.prepare(model, x, { qconfigSetter: [qb.qconfig.defaultCalibrationQconfigSetter] });
    qb.setFakeQuantize(calib, qb.FakeQuantState.CALIBRATION);
    await qb.calibrate(calib, [x], { onProgress: () => {} });
    qb.setFakeQuantize(calib, qb.FakeQuantState.VALIDATION);
    const hb = qb.convert(qb.export(calib, x), qb.March.NASH_M);
    const fq = await medianMs(() => tf.dispose(calib.forward(x)), 3);
    const first = await medianMs(() => tf.dispose(hb.forward(x)), 1);
    const int = await medianMs(() => tf.dispose(hb.forward(x)), 3);
    const a = (calib.forward(x) as qb.tf.Tensor).dataSync();
    const b = hb.forward(x).dataSync();
    let worst = 0;
    for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
    console.log(
      `${name}: fake-quant forward ${fq.toFixed(0)} ms, integer model ${int.toFixed(0)} ms (${(int / fq).toFixed(2)}×; first call ${first.toFixed(0)} ms); max |int − fake-quant| ${worst.toExponential(2)}`,
    );
    calib.dispose();
    model.dispose();
    x.dispose();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
