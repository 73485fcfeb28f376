/**
 * The article's flow as a script (`npm start`): load the PyTorch checkpoint and input, run the
 * float model, calibrate three ways of getting int16 into linear2, print how far each
 * calibrated output is from float.
 */
import * as tf from "@tensorflow/tfjs";
import * as path from "node:path";
import * as qb from "../src";

const FIXTURES = path.join(__dirname, "..", "..", "test", "fixtures");

function fmtRow(t: tf.Tensor, row: number[]): string {
  const v = Array.from(tf.tidy(() => t.slice([...row, 0], [1, 1, -1]).reshape([-1])).dataSync());
  const f = (x: number) => x.toFixed(4).padStart(7);
  return `[${v.slice(0, 3).map(f).join(", ")}, ..., ${v.slice(-3).map(f).join(", ")}]`;
}

export interface ConfigResult {
  name: string;
  meanAbs: number;
  maxAbs: number;
  output: tf.Tensor;
}

export async function runArticle(log: (s: string) => void = console.log): Promise<ConfigResult[]> {
  const backend = await qb.backend.init();
  qb.setMarch(qb.March.NASH_M);
  const sd = (await qb.io.loadTorch(path.join(FIXTURES, "float-checkpoint.ckpt"))) as Record<string, tf.Tensor>;
  const x = (await qb.io.loadTorch(path.join(FIXTURES, "random_data.pt"))) as tf.Tensor;
  log(`backend ${backend}; input [${x.shape}]`);

  const model = new qb.examples.SmallModel();
  model.loadStateDict(sd);
  const floatOut = model.eval().forward(x);

  const mulSum = new qb.examples.SmallModelMulSum(sd["linear2.weight"], sd["linear2.bias"]);
  const { missingKeys, unexpectedKeys } = mulSum.loadStateDict(sd, { strict: false });
  log(`mul+sum model: missing keys [${missingKeys}], unexpected keys [${unexpectedKeys}]`);

  const configs: [string, qb.nn.Module, qb.qconfig.QconfigSetter[]][] = [
    ["linear2 weight int8 (template)", model, [qb.qconfig.calibration8bitWeight16bitActQconfigSetter]],
    [
      "linear2 weight int16",
      model,
      [
        qb.qconfig.ModuleNameQconfigSetter({ linear2: qb.qconfig.getQconfig({ weightDtype: qb.qint16 }) }),
        qb.qconfig.calibration8bitWeight16bitActQconfigSetter,
      ],
    ],
    ["linear2 as broadcast mul + sum, int16", mulSum, [qb.qconfig.calibration8bitWeight16bitActQconfigSetter]],
  ];
  const results: ConfigResult[] = [];
  log(`float: ${fmtRow(floatOut, [0, 0])}`);
  log(`       ${fmtRow(floatOut, [1, 99])}`);
  for (const [name, m, setters] of configs) {
    const t0 = performance.now();
    const calib = qb.prepare(m.eval(), x, { qconfigSetter: setters });
    qb.setFakeQuantize(calib, qb.FakeQuantState.CALIBRATION);
    await qb.calibrate(calib, [x], { onProgress: () => {} });
    qb.setFakeQuantize(calib, qb.FakeQuantState.VALIDATION);
    const out = calib.forward(x) as tf.Tensor;
    const ms = performance.now() - t0;
    const [meanAbs, maxAbs] = tf.tidy(() => {
      const d = tf.abs(tf.sub(out, floatOut));
      return [tf.mean(d).dataSync()[0], tf.max(d).dataSync()[0]];
    });
    log(`\n${name}  (prepare + calibrate + validate ${ms.toFixed(0)} ms)`);
    log(`calib: ${fmtRow(out, [0, 0])}`);
    log(`       ${fmtRow(out, [1, 99])}`);
    log(`|calib - float|: mean ${meanAbs.toExponential(3)}, max ${maxAbs.toExponential(3)}`);
    results.push({ name, meanAbs, maxAbs, output: out });
    calib.dispose();
  }
  qb.io.disposeAll(sd);
  x.dispose();
  floatOut.dispose();
  model.dispose();
  mulSum.dispose();
  return results;
}

if (require.main === module) {
  runArticle()
    .then((r) => r.forEach((c) => c.output.dispose()))
    .catch((e) => {
      console.error(e instanceof Error ? e.message : e);
      process.exit(1);
    });
}
