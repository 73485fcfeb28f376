/**
 * `npm run bench:data`: data in at scale. Writes 100 images of 224×224 (shapes on gradients, half
 * JPEG, half PNG) to a temporary folder, then measures images decoded per second (decode only, and
 * decode + resize + normalise), and one calibration of ResNet-18 (onnxruntime engine, MSE
 * observers) over the folder streamed in batches of 10: wall time and peak RSS.
 */
import * as tf from "@tensorflow/tfjs";
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import * as qb from "../src";

function scene(w: number, h: number, seed: number): Uint8Array {
  const rgba = new Uint8Array(w * h * 4);
  const cx = w / 2 + ((seed * 7) % 40) - 20;
  const cy = h / 2 + ((seed * 13) % 40) - 20;
  const r = 40 + (seed % 30);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = (y * w + x) * 4;
      const inside =
        seed % 2 === 0 ? (x - cx) ** 2 + (y - cy) ** 2 < r * r : Math.abs(x - cx) < r && Math.abs(y - cy) < r;
      rgba[i] = inside ? (seed * 37) % 256 : (x * 255) / w;
      rgba[i + 1] = inside ? (seed * 91) % 256 : (y * 255) / h;
      rgba[i + 2] = inside ? (seed * 53) % 256 : ((x + y) * 127) / (w + h);
      rgba[i + 3] = 255;
    }
  }
  return rgba;
}

async function main(): Promise<void> {
  await qb.backend.init();
  qb.setMarch(qb.March.NASH_M);
  const dir = mkdtempSync(path.join(tmpdir(), "qb-bench-data-"));
  const jpeg = require("jpeg-js") as typeof import("jpeg-js");
  const { PNG } = require("pngjs") as typeof import("pngjs");
  for (let k = 0; k < 100; k++) {
    const data = scene(224, 224, k);
    if (k % 2 === 0) writeFileSync(path.join(dir, `${k}.jpg`), jpeg.encode({ data, width: 224, height: 224 }, 90).data);
    else {
      const png = new PNG({ width: 224, height: 224 });
      png.data = Buffer.from(data);
      writeFileSync(path.join(dir, `${k}.png`), PNG.sync.write(png));
    }
  }
  const files = readdirSync(dir).map((f) => path.join(dir, f));
  const bufs = files.map((f) => readFileSync(f));
  let t = performance.now();
  for (let i = 0; i < bufs.length; i++) qb.io.decodeImage(bufs[i], files[i]);
  const decodeMs = performance.now() - t;
  const opts = {
    resize: [224, 224] as [number, number],
    mean: [123.675, 116.28, 103.53],
    scale: [1 / 58.395, 1 / 57.12, 1 / 57.375],
  };
  t = performance.now();
  for (let i = 0; i < bufs.length; i++)
    qb.io
      .imageTensor(qb.io.decodeImage(bufs[i], files[i]), { ...opts, resize: [200, 200], crop: [192, 192] })
      .dispose();
  const preprocessMs = performance.now() - t;
  console.log(
    `decode: ${((1000 * bufs.length) / decodeMs).toFixed(0)} images/s (224×224, half JPEG, half PNG); decode + resize + crop + normalise: ${((1000 * bufs.length) / preprocessMs).toFixed(0)} images/s`,
  );

  const model = qb.examples.deterministicInit(new qb.examples.ResNet18().eval());
  const ds = qb.data.imageFolder(dir, { batchSize: 10, image: opts });
  const [[first]] = await ds.take(1);
  const calib = qb.prepare(model, first, { qconfigSetter: [qb.qconfig.defaultCalibrationQconfigSetter], warn: false });
  first.dispose();
  qb.setFakeQuantize(calib, qb.FakeQuantState.CALIBRATION);
  const rssBefore = process.memoryUsage().rss;
  t = performance.now();
  await qb.calibrate(calib, ds);
  const calibMs = performance.now() - t;
  console.log(
    `calibration of ResNet-18 (${qb.backend.engine(calib).engine}, MSE observers) on ${ds.samples} images of 224×224 in batches of ${ds.batchSize}: ${(calibMs / 1000).toFixed(1)} s; ` +
      `RSS ${(rssBefore / 2 ** 20).toFixed(0)} MB before, peak RSS of the process ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MB; tensors left ${tf.memory().numTensors}`,
  );
  calib.dispose();
  model.dispose();
  rmSync(dir, { recursive: true, force: true });
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
