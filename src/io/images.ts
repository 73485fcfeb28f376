/**
 * Images in, as a model's input: JPEG (jpeg-js), PNG (pngjs) — both pure JavaScript, from the npm
 * registry, nothing downloaded at install — and uncompressed BMP (read here). PNG and BMP decode
 * exactly as PIL does; a JPEG within 2 of PIL / OpenCV when its chroma is not subsampled (the
 * IDCTs round differently), while a 4:2:0 JPEG differs more at colour edges (jpeg-js repeats
 * chroma samples where libjpeg interpolates them). Then the
 * preprocessing deployment configs name: resize (bilinear with OpenCV's INTER_LINEAR pixel
 * centres, or INTER_NEAREST), centre crop, RGB or BGR, `(pixel − mean) · scale` per channel
 * (the toolchain's `mean_value` / `scale_value`), NCHW or NHWC, float32.
 *
 * ```ts
 * const x = await qb.io.loadImage("cat.jpg", { resize: [256, 256], crop: [224, 224], mean: [123.675, 116.28, 103.53], scale: [1 / 58.395, 1 / 57.12, 1 / 57.375] });
 * ```
 */
import * as tf from "@tensorflow/tfjs";
import { errors } from "../messages";
import { readInput } from "./readInput";

/** Decoded pixels: height × width × 3, 8-bit RGB. */
export interface RgbImage {
  width: number;
  height: number;
  data: Uint8Array;
}

export const IMAGE_EXTENSIONS = [".jpg", ".jpeg", ".png", ".bmp"];

function bad(file: string, problem: string): never {
  throw errors.badFile("loadImage", file, problem);
}

function decodeBmp(buf: Buffer, file: string): RgbImage {
  if (buf.length < 54) bad(file, "is cut short inside its BMP header");
  const offset = buf.readUInt32LE(10);
  const header = buf.readUInt32LE(14);
  if (header < 40) bad(file, `has a BMP core header (${header} bytes); save it as a Windows BMP (BITMAPINFOHEADER)`);
  const width = buf.readInt32LE(18);
  const rawHeight = buf.readInt32LE(22);
  const bpp = buf.readUInt16LE(28);
  const compression = buf.readUInt32LE(30);
  if ((bpp !== 24 && bpp !== 32) || (compression !== 0 && !(compression === 3 && bpp === 32))) {
    bad(
      file,
      `is a ${bpp}-bit BMP with compression ${compression}; quantbook reads uncompressed 24- and 32-bit BMPs (save it as PNG)`,
    );
  }
  const height = Math.abs(rawHeight);
  const bytes = bpp / 8;
  const stride = Math.ceil((width * bytes) / 4) * 4;
  if (offset + stride * height > buf.length)
    bad(file, `is cut short: ${width}×${height} pixels need ${offset + stride * height} bytes, it has ${buf.length}`);
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    // rows are stored bottom-up unless the height is negative
    const row = offset + (rawHeight > 0 ? height - 1 - y : y) * stride;
    for (let x = 0; x < width; x++) {
      const p = row + x * bytes;
      const q = (y * width + x) * 3;
      data[q] = buf[p + 2];
      data[q + 1] = buf[p + 1];
      data[q + 2] = buf[p];
    }
  }
  return { width, height, data };
}

/** Decodes JPEG, PNG or BMP bytes to 8-bit RGB (alpha dropped, grey expanded). */
export function decodeImage(buf: Buffer, file = "<bytes>"): RgbImage {
  if (buf.length >= 3 && buf[0] === 0xff && buf[1] === 0xd8 && buf[2] === 0xff) {
    const jpeg = require("jpeg-js") as typeof import("jpeg-js");
    try {
      const img = jpeg.decode(buf, { useTArray: true, formatAsRGBA: false, maxMemoryUsageInMB: 2048 });
      return { width: img.width, height: img.height, data: img.data };
    } catch (e) {
      bad(file, `is a JPEG that does not decode (${(e as Error).message})`);
    }
  }
  if (buf.length >= 8 && buf.readUInt32BE(0) === 0x89504e47) {
    const { PNG } = require("pngjs") as typeof import("pngjs");
    let png: { width: number; height: number; data: Buffer };
    try {
      png = PNG.sync.read(buf);
    } catch (e) {
      bad(file, `is a PNG that does not decode (${(e as Error).message})`);
    }
    const data = new Uint8Array(png.width * png.height * 3);
    for (let i = 0, j = 0; i < data.length; i += 3, j += 4) {
      data[i] = png.data[j];
      data[i + 1] = png.data[j + 1];
      data[i + 2] = png.data[j + 2];
    }
    return { width: png.width, height: png.height, data };
  }
  if (buf.length >= 2 && buf[0] === 0x42 && buf[1] === 0x4d) return decodeBmp(buf, file);
  bad(file, "is not a JPEG, PNG or BMP image");
}

export type Resize = "bilinear" | "nearest";

/**
 * Resizes 8-bit RGB to `h × w`. bilinear: OpenCV's INTER_LINEAR (pixel centres, source coordinate
 * (d + ½)·scale − ½, clamped at the edges), rounded to 8 bits; nearest: INTER_NEAREST (floor(d · scale)).
 */
export function resizeImage(img: RgbImage, h: number, w: number, mode: Resize = "bilinear"): RgbImage {
  if (img.height === h && img.width === w) return img;
  const out = new Uint8Array(h * w * 3);
  const sy = img.height / h;
  const sx = img.width / w;
  if (mode === "nearest") {
    for (let y = 0; y < h; y++) {
      const yy = Math.min(Math.floor(y * sy), img.height - 1);
      for (let x = 0; x < w; x++) {
        const xx = Math.min(Math.floor(x * sx), img.width - 1);
        out.set(img.data.subarray((yy * img.width + xx) * 3, (yy * img.width + xx) * 3 + 3), (y * w + x) * 3);
      }
    }
    return { width: w, height: h, data: out };
  }
  const axis = (d: number, scale: number, size: number): [number, number, number] => {
    let f = (d + 0.5) * scale - 0.5;
    let i = Math.floor(f);
    f -= i;
    if (i < 0) {
      i = 0;
      f = 0;
    }
    if (i >= size - 1) {
      i = size - 1;
      f = 0;
    }
    return [i, Math.min(i + 1, size - 1), f];
  };
  for (let y = 0; y < h; y++) {
    const [y0, y1, fy] = axis(y, sy, img.height);
    for (let x = 0; x < w; x++) {
      const [x0, x1, fx] = axis(x, sx, img.width);
      for (let c = 0; c < 3; c++) {
        const p = (yy: number, xx: number) => img.data[(yy * img.width + xx) * 3 + c];
        const v = (1 - fy) * ((1 - fx) * p(y0, x0) + fx * p(y0, x1)) + fy * ((1 - fx) * p(y1, x0) + fx * p(y1, x1));
        out[(y * w + x) * 3 + c] = Math.min(255, Math.max(0, Math.round(v)));
      }
    }
  }
  return { width: w, height: h, data: out };
}

export interface ImageOptions {
  /** Resize to [height, width] first. */
  resize?: [number, number];
  /** bilinear (default, OpenCV INTER_LINEAR) or nearest. */
  interpolation?: Resize;
  /** Then cut the centre [height, width]. */
  crop?: [number, number];
  /** Channel order of the tensor (default rgb). */
  channels?: "rgb" | "bgr";
  /** Subtracted per channel (in the tensor's channel order), before `scale`. */
  mean?: number[];
  /** Multiplied per channel after `mean` (1/255 for [0, 1] inputs). */
  scale?: number[];
  /** NCHW (default) or NHWC; the tensor has a batch dimension of 1. */
  layout?: "NCHW" | "NHWC";
}

function checkOptions(o: ImageOptions, file: string): void {
  const pair = (v: unknown) => Array.isArray(v) && v.length === 2 && v.every((d) => Number.isInteger(d) && d > 0);
  if (o.resize !== undefined && !pair(o.resize))
    throw errors.invalidArgument(`loadImage (${file})`, `resize ${JSON.stringify(o.resize)}`, "pass [height, width]");
  if (o.crop !== undefined && !pair(o.crop))
    throw errors.invalidArgument(`loadImage (${file})`, `crop ${JSON.stringify(o.crop)}`, "pass [height, width]");
  for (const k of ["mean", "scale"] as const) {
    const v = o[k];
    if (v !== undefined && (!Array.isArray(v) || (v.length !== 1 && v.length !== 3)))
      throw errors.invalidArgument(
        `loadImage (${file})`,
        `${k} ${JSON.stringify(v)}`,
        "pass one value or one per channel",
      );
  }
}

/** Decoded pixels as a [1, 3, H, W] (or [1, H, W, 3]) float32 tensor, preprocessed as `opts` says. */
export function imageTensor(img: RgbImage, opts: ImageOptions = {}, file = "<image>"): tf.Tensor {
  checkOptions(opts, file);
  let im = opts.resize ? resizeImage(img, opts.resize[0], opts.resize[1], opts.interpolation) : img;
  if (opts.crop) {
    const [ch, cw] = opts.crop;
    if (ch > im.height || cw > im.width)
      throw errors.shapeMismatch(
        `loadImage (${file})`,
        `a crop of ${ch}×${cw}`,
        `at most the image's ${im.height}×${im.width} (resize first)`,
      );
    const top = Math.floor((im.height - ch) / 2);
    const left = Math.floor((im.width - cw) / 2);
    const data = new Uint8Array(ch * cw * 3);
    for (let y = 0; y < ch; y++)
      data.set(im.data.subarray(((top + y) * im.width + left) * 3, ((top + y) * im.width + left + cw) * 3), y * cw * 3);
    im = { width: cw, height: ch, data };
  }
  const { width: w, height: h } = im;
  const order = opts.channels === "bgr" ? [2, 1, 0] : [0, 1, 2];
  const mean = opts.mean ?? [0];
  const scale = opts.scale ?? [1];
  const nchw = (opts.layout ?? "NCHW") === "NCHW";
  const out = new Float32Array(h * w * 3);
  for (let c = 0; c < 3; c++) {
    const m = mean[mean.length === 1 ? 0 : c];
    const s = scale[scale.length === 1 ? 0 : c];
    const src = order[c];
    for (let i = 0; i < h * w; i++) out[nchw ? c * h * w + i : i * 3 + c] = (im.data[i * 3 + src] - m) * s;
  }
  return tf.tensor(out, nchw ? [1, 3, h, w] : [1, h, w, 3], "float32");
}

/** Reads and preprocesses one image file. */
export async function loadImage(path: string, opts: ImageOptions = {}): Promise<tf.Tensor> {
  return imageTensor(decodeImage(await readInput("loadImage", path), path), opts, path);
}
