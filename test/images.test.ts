/**
 * The image reader against PIL's and OpenCV's decodes and OpenCV's resizes (fixtures written by
 * test/fixtures/make_image_fixtures.py): PNG (RGB and grey), JPEG, an odd-width BMP; bilinear and
 * nearest resizing down and up; preprocessing; class folders; bad files named.
 */
import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { before, describe, it } from "node:test";
import * as qb from "../src";
import { assertThrows, calibrated, setup } from "./helpers";

const DIR = path.join(__dirname, "..", "..", "test", "fixtures", "images");
const npy = (name: string) => qb.io.parseNpy(readFileSync(path.join(DIR, name)), name);
const decode = (name: string) => qb.io.decodeImage(readFileSync(path.join(DIR, name)), name);

/** Largest |a − b| over the pixels. */
function maxDiff(img: qb.io.RgbImage, want: tf.Tensor): number {
  assert.deepEqual([img.height, img.width, 3], want.shape);
  const w = want.dataSync();
  let d = 0;
  for (let i = 0; i < w.length; i++) d = Math.max(d, Math.abs(img.data[i] - w[i]));
  return d;
}

describe("images", () => {
  before(setup);

  for (const [file, ref, tol] of [
    ["circle.png", "circle.png.pil.npy", 0],
    ["grey.png", "grey.png.pil.npy", 0],
    ["odd.bmp", "odd.bmp.pil.npy", 0],
    // jpeg-js's float IDCT against libjpeg's integer one: a step or two
    ["square.jpg", "square.jpg.pil.npy", 2],
    ["square.jpg", "square.jpg.cv2.npy", 2],
  ] as const) {
    it(`decodes ${file} as ${ref.split(".").slice(-2, -1)[0].toUpperCase()} does (within ${tol})`, (t) => {
      const want = npy(ref);
      const d = maxDiff(decode(file), want);
      t.diagnostic(`${file}: largest difference from ${ref}: ${d}`);
      assert.ok(d <= tol, `${d}`);
      want.dispose();
    });
  }

  it("a 4:2:0 JPEG: jpeg-js replicates chroma where libjpeg interpolates it; the mean difference is small", (t) => {
    const img = decode("square420.jpg");
    for (const ref of ["square420.jpg.pil.npy", "square420.jpg.cv2.npy"]) {
      const want = npy(ref);
      const w = want.dataSync();
      let sum = 0;
      for (let i = 0; i < w.length; i++) sum += Math.abs(img.data[i] - w[i]);
      const mean = sum / w.length;
      t.diagnostic(
        `square420.jpg: mean |difference| from ${ref} ${mean.toFixed(2)}, largest ${maxDiff(img, want)} (at colour edges)`,
      );
      // (a 40×30 image of sharp colour edges: photos, mostly smooth, differ less)
      assert.ok(mean < 8, `${mean}`);
      want.dispose();
    }
  });

  for (const mode of ["linear", "nearest"] as const) {
    for (const [h, w] of [
      [7, 11],
      [29, 31],
    ]) {
      it(`resizes ${mode === "linear" ? "bilinear" : "nearest"} to ${h}×${w} as OpenCV does (within 1)`, (t) => {
        const want = npy(`circle.${mode}.${h}x${w}.npy`);
        const d = maxDiff(
          qb.io.resizeImage(decode("circle.png"), h, w, mode === "linear" ? "bilinear" : "nearest"),
          want,
        );
        t.diagnostic(`${mode} ${h}×${w}: largest difference from cv2.resize ${d}`);
        assert.ok(d <= (mode === "nearest" ? 0 : 1), `${d}`);
        want.dispose();
      });
    }
  }

  it("preprocesses: crop, BGR, mean / scale, NCHW and NHWC", async () => {
    const img = decode("circle.png");
    const x = await qb.io.loadImage(path.join(DIR, "circle.png"), {
      crop: [5, 7],
      channels: "bgr",
      mean: [10, 20, 30],
      scale: [0.5],
      layout: "NCHW",
    });
    assert.deepEqual(x.shape, [1, 3, 5, 7]);
    // the centre: top (17 − 5) / 2 = 6, left (23 − 7) / 2 = 8; channel 0 is blue
    const px = (y: number, xx: number, c: number) => img.data[((6 + y) * 23 + 8 + xx) * 3 + c];
    const v = x.arraySync() as number[][][][];
    assert.equal(v[0][0][2][3], (px(2, 3, 2) - 10) * 0.5);
    assert.equal(v[0][2][4][6], (px(4, 6, 0) - 30) * 0.5);
    const nhwc = await qb.io.loadImage(path.join(DIR, "circle.png"), { layout: "NHWC" });
    assert.deepEqual(nhwc.shape, [1, 17, 23, 3]);
    assert.equal((nhwc.arraySync() as number[][][][])[0][3][4][1], img.data[(3 * 23 + 4) * 3 + 1]);
    tf.dispose([x, nhwc]);
    await assertThrows(
      () => qb.io.loadImage(path.join(DIR, "circle.png"), { crop: [40, 40] }),
      /a crop of 40×40/,
      /resize first/,
    );
  });

  it("an image folder with a sub-folder per class: batches, labels, classes; evaluate's accuracy takes them", async () => {
    const ds = qb.data.imageFolder(path.join(DIR, "classes"), {
      batchSize: 4,
      image: { resize: [8, 8], scale: [1 / 255] },
    });
    assert.deepEqual(ds.classes, ["circle", "square"]);
    assert.deepEqual(ds.labels, [0, 0, 0, 1, 1, 1]);
    const batches = await ds.take();
    assert.deepEqual(
      batches.map(([b]) => b.shape),
      [
        [4, 3, 8, 8],
        [2, 3, 8, 8],
      ],
    );
    assert.ok(tf.tidy(() => tf.max(batches[0][0]).dataSync()[0]) <= 1);
    tf.dispose(batches.flat());
    const shuffled = qb.data.imageFolder(path.join(DIR, "classes"), { shuffle: 3 });
    // labels follow their files through the shuffle
    shuffled.files.forEach(([f], i) =>
      assert.equal(shuffled.classes?.[shuffled.labels?.[i] as number], path.basename(path.dirname(f))),
    );
  });

  it("a flat folder labelled by a CSV (names or indices, header skipped, extra rows ignored); evaluate and the PTQ input_parameters read the dataset", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "qb-csv-"));
    for (const cls of ["circle", "square"])
      for (const k of [0, 1])
        copyFileSync(path.join(DIR, "classes", cls, `${k}.png`), path.join(dir, `${cls}${k}.png`));
    const csv = path.join(dir, "labels.csv");
    writeFileSync(
      csv,
      "file,label\ncircle0.png,circle\nsquare0.png,square\ncircle1.png,circle\nsquare1.png,square\nelsewhere.png,square\n",
    );
    const ds = qb.data.imageFolder(dir, {
      labels: csv,
      image: { resize: [8, 8], channels: "bgr", mean: [1, 2, 3], scale: [0.5, 0.25, 0.125] },
    });
    assert.deepEqual(ds.classes, ["circle", "square"]);
    assert.deepEqual(
      ds.files.map(([f]) => ds.classes?.[ds.labels?.[ds.files.findIndex(([g]) => g === f)] as number]),
      ds.files.map(([f]) => path.basename(f).replace(/\d\.png$/, "")),
    );
    writeFileSync(csv, "circle0.png,0\ncircle1.png,0\nsquare0.png,1\nsquare1.png,1\n");
    const byIndex = qb.data.imageFolder(dir, { labels: csv });
    assert.deepEqual(byIndex.labels, [0, 0, 1, 1]);
    assert.equal(byIndex.classes, undefined);
    // the deployment config's input_parameters say what the dataset did to the pixels
    assert.deepEqual(qb.deploy.inputParameters(ds), {
      input_type_train: "bgr",
      input_layout_train: "NCHW",
      input_type_rt: "bgr",
      input_layout_rt: "NCHW",
      norm_type: "data_mean_and_scale",
      mean_value: "1 2 3",
      scale_value: "0.5 0.25 0.125",
    });
    assert.equal(qb.deploy.inputParameters(qb.data.imageFolder(dir, { labels: csv })).norm_type, "no_preprocess");
    const transformed = qb.data.imageFolder(dir, { labels: csv, transform: (b) => tf.mul(b, 2) });
    await assertThrows(() => qb.deploy.inputParameters(transformed), /transform/, /pass \{ inputParameters \}/);
    // evaluate takes the dataset's labels: the same accuracy as passing them
    class Tiny extends qb.nn.Module {
      quant = new qb.nn.QuantStub();
      flatten = new qb.nn.Flatten();
      fc = new qb.nn.Linear(3 * 8 * 8, 2);
      dequant = new qb.nn.DeQuantStub();
      forward(x: tf.Tensor): tf.Tensor {
        return this.dequant.forward(this.fc.forward(this.flatten.forward(this.quant.forward(x))));
      }
    }
    qb.nn.manualSeed(5);
    const float = new Tiny().eval();
    const first = await ds.take();
    const m = await calibrated(float, first[0][0], [qb.qconfig.defaultCalibrationQconfigSetter]);
    const own = await qb.analysis.evaluate(m, ds, { task: "classification" });
    const given = await qb.analysis.evaluate(m, ds, { task: "classification", labels: ds.labels as number[] });
    assert.ok(own.accuracy !== undefined);
    assert.deepEqual(own.accuracy, given.accuracy);
    tf.dispose(first.flat());
    [m, float].forEach((v) => v.dispose());
    // a missing row names the image; a CSV beside class folders is refused
    writeFileSync(csv, "circle0.png,0\n");
    await assertThrows(
      () => qb.data.imageFolder(dir, { labels: csv }),
      /labels\.csv/,
      /has no row for .*(circle1|square0|square1)\.png/,
    );
    await assertThrows(
      () => qb.data.imageFolder(path.join(DIR, "classes"), { labels: csv }),
      /class folders and a labels CSV/,
    );
    rmSync(dir, { recursive: true, force: true });
  });

  it("bad images are named: a non-image in the folder, a cut-short JPEG, something that is no image", async () => {
    await assertThrows(() => qb.data.imageFolder(path.join(DIR, "mixed")), /mixed\/notes\.txt/, /is not an image/);
    await assertThrows(() => qb.io.loadImage(path.join(DIR, "broken.jpg")), /broken\.jpg/, /JPEG that does not decode/);
    await assertThrows(
      () => qb.io.loadImage(path.join(DIR, "circle.png.pil.npy")),
      /circle\.png\.pil\.npy/,
      /is not a JPEG, PNG or BMP image/,
    );
  });
});
