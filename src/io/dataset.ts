/**
 * Calibration and evaluation data from disk, streamed: a `Dataset` reads one batch at a time
 * (memory stays bounded by a batch, not the dataset), in batches of `batchSize`, optionally in a
 * seeded shuffle and cut at `limit` samples, with one tensor per model input. `calibrate` and
 * `evaluate` take it wherever they take a list of batches; `take(n)` gives the first n batches as
 * tensors for the tools that need them in memory (sensitivity, the planner).
 *
 * Layouts:
 * - `npyFolder(dir)`: `.npy` files, one per sample; or one sub-folder per model input holding
 *   files of the same names — the reference toolchain's `calibration_data/<input_name>/N.npy`.
 * - `rawFolder(dir, { shape, dtype })`: raw files (`numpy.tofile`: `.bin`, `.rgb`, `.bgr`, …) of a
 *   declared shape and dtype (float32 feature maps, uint8 images).
 *
 * A batch lives until the next one is read (the iterator frees it then, and at the end): keep a
 * tensor longer with `tf.clone`.
 *
 * ```ts
 * const ds = qb.data.npyFolder("calibration_data", { batchSize: 8, shuffle: 0, limit: 100 });
 * await qb.calibrate(calib, ds, { onProgress });   // ds.length batches
 * ```
 */
import * as tf from "@tensorflow/tfjs";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { readFile } from "node:fs/promises";
import * as path from "node:path";
import { errors } from "../messages";
import { BYTES, decodeStorage, tfDType, type StorageDType } from "./dtypeDecode";
import { parseNpy } from "./numpy";
import { decodeImage, imageTensor, IMAGE_EXTENSIONS, type ImageOptions } from "./images";
import { loadSafetensors } from "./safetensors";
import { loadTorch } from "./torch";

export interface DatasetOptions {
  /** Samples per batch (default 1). */
  batchSize?: number;
  /** Shuffle the samples with this seed (a number), or keep the files' order (default). */
  shuffle?: number;
  /** Use at most this many samples. */
  limit?: number;
  /**
   * Samples already carry a batch dimension of 1 (`[1, 3, 224, 224]`): batches concatenate them
   * (default: true when a sample's first dimension is 1), else stack them along a new axis 0.
   */
  batched?: boolean;
  /** Applied to each batch of each input (normalisation, layout): `(batch, inputName) => tensor`; run inside tf.tidy. */
  transform?: (batch: tf.Tensor, input: string) => tf.Tensor;
}

type Reader = (file: string) => Promise<tf.Tensor>;

/** A seeded Fisher–Yates shuffle (mulberry32). */
function shuffled(n: number, seed: number): number[] {
  let a = seed >>> 0;
  const rand = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const idx = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [idx[i], idx[j]] = [idx[j], idx[i]];
  }
  return idx;
}

export class Dataset implements AsyncIterable<tf.Tensor[]> {
  /** The model inputs, in order (names of the sub-folders, or "input"). */
  readonly inputs: string[];
  /** Samples used (after `limit`). */
  readonly samples: number;
  readonly batchSize: number;
  private readonly order: string[][];
  /** Class index of every sample, in the order batches read them (image folders with a sub-folder per class). */
  readonly labels: number[] | undefined;
  /** Class names (the sub-folders), indexed by label. */
  readonly classes: string[] | undefined;
  /**
   * How samples become tensors, for the deployment config (`qb.deploy.inputParameters`): "image"
   * with the decoding options, or "featuremap" (tensors read as they are). Undefined when a
   * `transform` changes them in a way quantbook cannot describe.
   */
  readonly preprocessing: { kind: "image"; image: ImageOptions } | { kind: "featuremap" } | undefined;

  constructor(
    /** Per sample, one file per input. */
    files: string[][],
    inputs: string[],
    private readonly read: Reader,
    private readonly opts: DatasetOptions = {},
    classes?: { labels: number[]; names: string[] },
    preprocessing: Dataset["preprocessing"] = { kind: "featuremap" },
  ) {
    const bs = opts.batchSize ?? 1;
    if (!Number.isInteger(bs) || bs < 1)
      throw errors.invalidArgument("Dataset", `batchSize ${bs}`, "pass a whole number ≥ 1");
    if (opts.limit !== undefined && (!Number.isInteger(opts.limit) || opts.limit < 1))
      throw errors.invalidArgument("Dataset", `limit ${opts.limit}`, "pass a whole number ≥ 1");
    const idx = opts.shuffle === undefined ? files.map((_, i) => i) : shuffled(files.length, opts.shuffle);
    const kept = idx.slice(0, opts.limit ?? files.length);
    this.order = kept.map((i) => files[i]);
    this.labels = classes ? kept.map((i) => classes.labels[i]) : undefined;
    this.classes = classes && classes.names.length > 0 ? classes.names : undefined;
    this.preprocessing = opts.transform === undefined ? preprocessing : undefined;
    this.inputs = inputs;
    this.samples = this.order.length;
    this.batchSize = bs;
  }

  /** Number of batches (for progress bars). */
  get length(): number {
    return Math.ceil(this.samples / this.batchSize);
  }

  /** The files of each sample, in the order batches read them. */
  get files(): string[][] {
    return this.order.map((f) => f.slice());
  }

  private async batch(k: number): Promise<tf.Tensor[]> {
    const rows = this.order.slice(k * this.batchSize, (k + 1) * this.batchSize);
    const perInput: tf.Tensor[][] = this.inputs.map(() => []);
    try {
      for (const row of rows) for (const [i, file] of row.entries()) perInput[i].push(await this.read(file));
      return perInput.map((ts, i) => {
        const shape0 = ts[0].shape;
        const odd = ts.find((t) => t.shape.length !== shape0.length || t.shape.some((d, j) => d !== shape0[j]));
        if (odd !== undefined) {
          const file = rows[ts.indexOf(odd)][i];
          throw errors.shapeMismatch(
            `Dataset (${file})`,
            `a sample of shape [${odd.shape}]`,
            `[${shape0}] like ${rows[0][i]}; every sample of an input must have one shape`,
          );
        }
        const batched = this.opts.batched ?? (shape0.length > 0 && shape0[0] === 1);
        const transform = this.opts.transform;
        return tf.tidy(() => {
          const b = ts.length === 1 && batched ? tf.clone(ts[0]) : batched ? tf.concat(ts, 0) : tf.stack(ts);
          if (transform === undefined) return b;
          const out = transform(b, this.inputs[i]);
          if (!(out instanceof tf.Tensor))
            throw errors.invalidArgument(
              "Dataset transform",
              `it returned ${typeof out} for input ${this.inputs[i]}`,
              "return a tf.Tensor",
            );
          return out;
        });
      });
    } finally {
      perInput.flat().forEach((t) => t.dispose());
    }
  }

  async *[Symbol.asyncIterator](): AsyncIterator<tf.Tensor[]> {
    let held: tf.Tensor[] = [];
    try {
      for (let k = 0; k < this.length; k++) {
        const next = await this.batch(k);
        tf.dispose(held);
        held = next;
        yield next;
      }
    } finally {
      tf.dispose(held);
    }
  }

  /** The first `n` batches (default all) in memory; the caller disposes them. */
  async take(n = this.length): Promise<tf.Tensor[][]> {
    const out: tf.Tensor[][] = [];
    try {
      for (let k = 0; k < Math.min(n, this.length); k++) out.push(await this.batch(k));
    } catch (e) {
      tf.dispose(out.flat());
      throw e;
    }
    return out;
  }
}

const natural = (a: string, b: string) => a.localeCompare(b, undefined, { numeric: true });

function listDir(dir: string, where: string): string[] {
  try {
    return readdirSync(dir).sort(natural);
  } catch (e) {
    throw errors.badFile(where, dir, `cannot list it: ${(e as Error).message}`, e);
  }
}

/**
 * Samples from files of `extensions` in `dir`, or from one sub-folder per input (files matched by
 * name across the sub-folders).
 */
function folder(dir: string, extensions: string[], where: string): { files: string[][]; inputs: string[] } {
  const entries = listDir(dir, where);
  const isDir = (e: string) => statSync(path.join(dir, e)).isDirectory();
  const dirs = entries.filter(isDir);
  const matching = (names: string[]) => names.filter((f) => extensions.some((x) => f.toLowerCase().endsWith(x)));
  const direct = matching(entries.filter((e) => !isDir(e)));
  if (direct.length > 0 || dirs.length === 0) {
    if (direct.length === 0) throw errors.badFile(where, dir, `has no ${extensions.join(" / ")} files`);
    return { files: direct.map((f) => [path.join(dir, f)]), inputs: ["input"] };
  }
  const per = dirs.map((d) => matching(listDir(path.join(dir, d), where)));
  const names = per[0];
  dirs.forEach((d, i) => {
    const a = new Set(per[i]);
    const missing = names.filter((n) => !a.has(n));
    const extra = per[i].filter((n) => !names.includes(n));
    if (missing.length > 0 || extra.length > 0 || per[i].length === 0) {
      throw errors.badFile(
        where,
        path.join(dir, d),
        `does not hold the same samples as ${path.join(dir, dirs[0])} (${missing.length} missing${missing.length ? `: ${missing.slice(0, 3).join(", ")}` : ""}; ${extra.length} extra${extra.length ? `: ${extra.slice(0, 3).join(", ")}` : ""})`,
      );
    }
  });
  return { files: names.map((n) => dirs.map((d) => path.join(dir, d, n))), inputs: dirs };
}

/** `.npy` files in `dir` (one input), or `dir/<input_name>/*.npy` (the reference toolchain's calibration_data layout). */
export function npyFolder(dir: string, opts: DatasetOptions & { inputs?: string[] } = {}): Dataset {
  const { files, inputs } = folder(dir, [".npy"], "npyFolder");
  const order = opts.inputs ?? inputs;
  if (opts.inputs !== undefined) {
    const unknown = opts.inputs.filter((n) => !inputs.includes(n));
    if (unknown.length > 0)
      throw errors.invalidArgument(
        `npyFolder (${dir})`,
        `no sub-folder for input${unknown.length > 1 ? "s" : ""} ${unknown.join(", ")}`,
        `the sub-folders are ${inputs.join(", ")}`,
      );
  }
  const pick = order.map((n) => inputs.indexOf(n));
  return new Dataset(
    files.map((row) => pick.map((i) => row[i])),
    order,
    async (file) => parseNpy(await readFile(file), file),
    opts,
  );
}

export interface RawOptions extends DatasetOptions {
  /** The shape of one sample (e.g. [1, 3, 224, 224] or [224, 224, 3]). */
  shape: number[];
  /** Element type the files were written in (default float32). */
  dtype?: StorageDType;
  /** File name endings to read (default .bin, .rgb, .bgr, .raw). */
  extensions?: string[];
}

/** Raw files (`numpy.tofile`) of a declared shape and dtype, one per sample; a file of the wrong size is an error naming it. */
export function rawFolder(dir: string, opts: RawOptions): Dataset {
  if (!Array.isArray(opts?.shape) || opts.shape.length === 0 || opts.shape.some((d) => !Number.isInteger(d) || d < 1)) {
    throw errors.invalidArgument(
      `rawFolder (${dir})`,
      `shape ${JSON.stringify(opts?.shape)}`,
      "declare the shape of one sample, e.g. { shape: [1, 3, 224, 224] }",
    );
  }
  const dtype = opts.dtype ?? "float32";
  if (!(dtype in BYTES))
    throw errors.invalidArgument(
      `rawFolder (${dir})`,
      `dtype '${dtype}'`,
      `use one of ${Object.keys(BYTES).join(", ")}`,
    );
  const { files, inputs } = folder(dir, opts.extensions ?? [".bin", ".rgb", ".bgr", ".raw"], "rawFolder");
  const count = opts.shape.reduce((a, b) => a * b, 1);
  const bytes = count * BYTES[dtype];
  return new Dataset(
    files,
    inputs,
    async (file) => {
      const buf = await readFile(file);
      if (buf.length !== bytes) {
        throw errors.badFile(
          "rawFolder",
          file,
          `has ${buf.length} bytes; ${count} ${dtype} elements of shape [${opts.shape}] are ${bytes} bytes — check the declared shape and dtype`,
        );
      }
      const values = decodeStorage(buf, dtype, file);
      // integer pixels become float32 values (0–255 for uint8): models take float input; `transform` normalises
      return tfDType(dtype) === "int32"
        ? tf.tensor(Float32Array.from(values), opts.shape, "float32")
        : tf.tensor(values, opts.shape, tfDType(dtype));
    },
    opts,
  );
}

/**
 * Labels of image files from a CSV: one row per image, `file,label` (a header row is skipped). The
 * file is its path relative to the folder or its name; the label a class index or a class name
 * (names are numbered in sorted order). Rows for files not in the folder are ignored (one CSV can
 * label a whole validation set); an image without a row is an error naming it.
 */
export function labelsFromCsv(
  csv: string,
  dir: string,
  files: string[],
): { labels: number[]; names: string[] } | { labels: number[] } {
  let text: string;
  try {
    text = readFileSync(csv, "utf8");
  } catch (e) {
    throw errors.badFile("imageFolder", csv, `cannot read the labels CSV: ${(e as Error).message}`, e);
  }
  const rows = text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("#"))
    .map((l) => l.split(/[,;\t]/).map((c) => c.trim().replace(/^"(.*)"$/, "$1")));
  const byKey = new Map<string, string>();
  rows.forEach((r, i) => {
    if (r.length < 2)
      throw errors.badFile("imageFolder", csv, `row ${i + 1} has ${r.length} column; expected file,label`);
    byKey.set(r[0], r[1]);
  });
  const raw = files.map((f) => {
    const rel = path.relative(dir, f);
    const label = byKey.get(rel) ?? byKey.get(rel.split(path.sep).join("/")) ?? byKey.get(path.basename(f));
    if (label === undefined)
      throw errors.badFile("imageFolder", csv, `has no row for ${f}; add a row '${path.basename(f)},<label>'`);
    return label;
  });
  if (raw.every((l) => /^\d+$/.test(l))) return { labels: raw.map(Number) };
  const names = [...new Set(raw)].sort();
  return { labels: raw.map((l) => names.indexOf(l)), names };
}

/**
 * JPEG / PNG / BMP files in `dir`, or in one sub-folder per class (then `labels` and `classes`
 * say each sample's class, for `qb.analysis.evaluate`'s accuracy); or a flat folder with `labels: "labels.csv"`
 * (see `labelsFromCsv`). Each image is preprocessed by `image`
 * (resize, crop, channel order, mean / scale, layout) into [1, 3, H, W]; batches stack them. A file
 * that is not an image is an error naming it (hidden files are skipped).
 */
export function imageFolder(
  dir: string,
  opts: DatasetOptions & { image?: ImageOptions; labels?: string } = {},
): Dataset {
  const entries = listDir(dir, "imageFolder").filter(
    (e) => !e.startsWith(".") && (opts.labels === undefined || path.resolve(dir, e) !== path.resolve(opts.labels)),
  );
  const isDir = (e: string) => statSync(path.join(dir, e)).isDirectory();
  const images = (folder: string, names: string[]) =>
    names.map((f) => {
      if (!IMAGE_EXTENSIONS.some((x) => f.toLowerCase().endsWith(x))) {
        throw errors.badFile(
          "imageFolder",
          path.join(folder, f),
          `is not an image (${IMAGE_EXTENSIONS.join(", ")}); move it out of the folder`,
        );
      }
      return path.join(folder, f);
    });
  const dirs = entries.filter(isDir);
  let files: string[];
  let classes: { labels: number[]; names: string[] } | undefined;
  if (dirs.length > 0) {
    const loose = entries.filter((e) => !isDir(e));
    if (loose.length > 0)
      throw errors.badFile(
        "imageFolder",
        path.join(dir, loose[0]),
        "sits beside class folders; put every image in its class's folder",
      );
    const per = dirs.map((d) =>
      images(
        path.join(dir, d),
        listDir(path.join(dir, d), "imageFolder").filter((e) => !e.startsWith(".")),
      ),
    );
    files = per.flat();
    classes = { labels: per.flatMap((fs, k) => fs.map(() => k)), names: dirs };
  } else files = images(dir, entries);
  if (files.length === 0) throw errors.badFile("imageFolder", dir, "has no images");
  if (opts.labels !== undefined) {
    if (classes !== undefined)
      throw errors.invalidArgument(
        `imageFolder (${dir})`,
        "class folders and a labels CSV",
        "use one of them: the class folders already label the images",
      );
    const got = labelsFromCsv(opts.labels, dir, files);
    classes = { labels: got.labels, names: "names" in got ? got.names : [] };
  }
  const image = opts.image ?? {};
  return new Dataset(
    files.map((f) => [f]),
    ["input"],
    async (file) => imageTensor(decodeImage(await readFile(file), file), image, file),
    { ...opts, batched: true },
    classes,
    { kind: "image", image },
  );
}

/**
 * Batches already in memory (tensors, or one list per batch for a model of several inputs) as a
 * Dataset, e.g. what `qb.io.loadTorch` read from a file holding a batch or a list of batches. The
 * Dataset hands out copies; the caller keeps (and disposes) the originals.
 */
export function fromTensors(
  batches: (tf.Tensor | tf.Tensor[])[],
  opts: Omit<DatasetOptions, "batchSize" | "batched"> & { inputs?: string[] } = {},
): Dataset {
  if (!Array.isArray(batches) || batches.length === 0)
    throw errors.invalidArgument(
      "data.fromTensors",
      "no batches",
      "pass one or more tensors (or lists of tensors, one per model input)",
    );
  const rows = batches.map((b, k) => {
    const ts = b instanceof tf.Tensor ? [b] : b;
    if (!Array.isArray(ts) || ts.some((t) => !(t instanceof tf.Tensor)))
      throw errors.invalidArgument(
        "data.fromTensors",
        `batch ${k} is not a tensor or a list of tensors`,
        "pass tensors",
      );
    return ts;
  });
  const n = rows[0].length;
  const odd = rows.findIndex((r) => r.length !== n);
  if (odd >= 0)
    throw errors.invalidArgument(
      "data.fromTensors",
      `batch ${odd} has ${rows[odd].length} tensors, batch 0 has ${n}`,
      "give every batch one tensor per model input",
    );
  const inputs = opts.inputs ?? (n === 1 ? ["input"] : rows[0].map((_, i) => `input_${i}`));
  const byKey = new Map<string, tf.Tensor>(
    rows.flatMap((r, k) => r.map((t, i) => [`${k}:${i}`, t] as [string, tf.Tensor])),
  );
  return new Dataset(
    rows.map((r, k) => r.map((_, i) => `${k}:${i}`)),
    inputs,
    async (key) => tf.clone(byKey.get(key) as tf.Tensor),
    { ...opts, batchSize: 1, batched: true },
  );
}

/**
 * A `torch.save` file (or `.safetensors`) holding one batch (a tensor), a list of batches, or a
 * dict of input name → tensor (one batch of a model of several inputs), as a Dataset.
 */
export async function torchFile(
  file: string,
  opts: Omit<DatasetOptions, "batchSize" | "batched"> = {},
): Promise<Dataset> {
  const value = file.endsWith(".safetensors") ? await loadSafetensors(file) : await loadTorch(file);
  const isTensor = (v: unknown): v is tf.Tensor => v instanceof tf.Tensor;
  if (isTensor(value)) return fromTensors([value], opts);
  if (Array.isArray(value) && value.every((b) => isTensor(b) || (Array.isArray(b) && b.every(isTensor))))
    return fromTensors(value as (tf.Tensor | tf.Tensor[])[], opts);
  if (value !== null && typeof value === "object" && Object.values(value).every(isTensor)) {
    const entries = Object.entries(value as Record<string, tf.Tensor>);
    return fromTensors([entries.map(([, t]) => t)], { ...opts, inputs: entries.map(([k]) => k) });
  }
  throw errors.badFile(
    "data.torchFile",
    file,
    "holds neither a tensor, a list of batches, nor a dict of input tensors",
  );
}
