/**
 * NumPy's `.npy` and `.npz` files, read without Python: every numeric dtype and bool, little- and
 * big-endian, C and Fortran order, format versions 1–3; `.npz` archives stored or deflated
 * (`np.savez` / `np.savez_compressed`). Values become float32, int32 or bool tensors, the dtypes
 * tfjs has (int64 values must fit in int32; unsigned 32/64-bit values become float32).
 *
 * ```ts
 * const x = await qb.io.loadNpy("calib/input_0.npy");        // tf.Tensor
 * const { image, mask } = await qb.io.loadNpz("batch.npz");  // Record<string, tf.Tensor>
 * ```
 */
import * as tf from "@tensorflow/tfjs";
import { carriesContext, errors } from "../messages";
import { decodeStorage, tfDType, type StorageDType } from "./dtypeDecode";
import { readZipEntries, readZipEntry } from "./zip";
import { readInput } from "./readInput";

const MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]); // \x93NUMPY

/** NumPy type code (kind + size) → the storage dtype it is decoded as. */
const CODES: Record<string, StorageDType | "uint16" | "uint32" | "uint64"> = {
  f2: "float16",
  f4: "float32",
  f8: "float64",
  i1: "int8",
  i2: "int16",
  i4: "int32",
  i8: "int64",
  u1: "uint8",
  u2: "uint16",
  u4: "uint32",
  u8: "uint64",
  b1: "bool",
};

export interface NpyArray {
  shape: number[];
  dtype: "float32" | "int32" | "bool";
  data: Float32Array | Int32Array | Uint8Array;
  /** The file's own dtype (`<f4`, `>i8`, `|b1`, ...). */
  descr: string;
}

function fail(file: string, problem: string): never {
  throw errors.badFile("loadNpy", file, problem);
}

/** The values of an unsigned 16/32/64-bit little-endian storage (as float32 when they may pass int32). */
function decodeUnsigned(bytes: Buffer, size: number): Float32Array | Int32Array {
  const n = Math.floor(bytes.length / size);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (size === 2) return Int32Array.from({ length: n }, (_, i) => dv.getUint16(2 * i, true));
  if (size === 4) return Float32Array.from({ length: n }, (_, i) => dv.getUint32(4 * i, true));
  return Float32Array.from({ length: n }, (_, i) => Number(dv.getBigUint64(8 * i, true)));
}

/** Parses one `.npy` file's bytes. */
export function parseNpyArray(buf: Buffer, file: string): NpyArray {
  if (buf.length < 10 || !buf.subarray(0, 6).equals(MAGIC))
    fail(file, "is not a .npy file (no \\x93NUMPY magic); write it with numpy.save");
  const major = buf[6];
  if (major < 1 || major > 3) fail(file, `has .npy format version ${major}.${buf[7]}; versions 1, 2 and 3 are read`);
  const headerLen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const start = major === 1 ? 10 : 12;
  if (start + headerLen > buf.length) fail(file, "is cut short inside its header");
  const header = buf.subarray(start, start + headerLen).toString(major === 3 ? "utf8" : "latin1");
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(header)?.[1];
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined)
    fail(file, `has a header quantbook cannot read (${header.trim()})`);
  const shape = shapeText
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "")
    .map(Number);
  if (shape.some((d) => !Number.isInteger(d) || d < 0)) fail(file, `has shape (${shapeText})`);
  const order = descr[0];
  const code = CODES[descr.slice(1)];
  if (!["<", ">", "|", "="].includes(order) || code === undefined) {
    fail(
      file,
      `holds dtype '${descr}'; quantbook reads float16/32/64, int8–64, uint8–64 and bool (convert with arr.astype(np.float32))`,
    );
  }
  const size = Number(descr.slice(2));
  const count = shape.reduce((a, b) => a * b, 1);
  const body = buf.subarray(start + headerLen);
  if (body.length < count * size)
    fail(file, `is cut short: ${count} elements of ${size} bytes need ${count * size} bytes, it has ${body.length}`);
  let bytes = Buffer.from(body.subarray(0, count * size));
  if (order === ">" && size > 1) {
    // big-endian: swap each element's bytes
    for (let i = 0; i < bytes.length; i += size) bytes.subarray(i, i + size).reverse();
  }
  let data: Float32Array | Int32Array | Uint8Array;
  if (code === "uint16" || code === "uint32" || code === "uint64") data = decodeUnsigned(bytes, size);
  else {
    try {
      data = decodeStorage(bytes, code, file);
    } catch (e) {
      fail(file, (e as Error).message);
    }
  }
  bytes = Buffer.alloc(0);
  if (fortran === "True" && shape.length > 1) data = toCOrder(data, shape);
  const dtype =
    data instanceof Float32Array
      ? "float32"
      : code === "bool"
        ? "bool"
        : code === "uint16"
          ? "int32"
          : tfDType(code as StorageDType);
  return { shape, dtype, data, descr };
}

/** Column-major values (Fortran order) in row-major order. */
function toCOrder<T extends Float32Array | Int32Array | Uint8Array>(data: T, shape: number[]): T {
  const out = new (data.constructor as new (n: number) => T)(data.length);
  const rank = shape.length;
  // strides of the Fortran layout
  const fStride = shape.map((_, i) => shape.slice(0, i).reduce((a, b) => a * b, 1));
  const idx = new Array<number>(rank).fill(0);
  for (let k = 0; k < data.length; k++) {
    let src = 0;
    for (let j = 0; j < rank; j++) src += idx[j] * fStride[j];
    out[k] = data[src];
    for (let j = rank - 1; j >= 0; j--) {
      if (++idx[j] < shape[j]) break;
      idx[j] = 0;
    }
  }
  return out;
}

const toTensor = (a: NpyArray) => tf.tensor(a.data, a.shape, a.dtype);

/** A `.npy` file's bytes as a tensor. */
export function parseNpy(buf: Buffer, file = "<bytes>"): tf.Tensor {
  return toTensor(parseNpyArray(buf, file));
}

/** The arrays of a `.npz` archive (stored or deflated), by name (without `.npy`). */
export function parseNpz(buf: Buffer, file = "<bytes>"): Record<string, tf.Tensor> {
  const out: Record<string, tf.Tensor> = {};
  try {
    const entries = readZipEntries(buf);
    for (const [name, e] of entries) {
      if (!name.endsWith(".npy")) continue;
      out[name.slice(0, -4)] = toTensor(parseNpyArray(readZipEntry(buf, e), `${file}:${name}`));
    }
  } catch (e) {
    Object.values(out).forEach((t) => t.dispose());
    if (carriesContext(e)) throw e;
    throw errors.badFile(
      "loadNpz",
      file,
      `is not a readable .npz archive (${(e as Error).message}); write it with numpy.savez`,
      e,
    );
  }
  return out;
}

export async function loadNpy(path: string): Promise<tf.Tensor> {
  return parseNpy(await readInput("loadNpy", path), path);
}

export async function loadNpz(path: string): Promise<Record<string, tf.Tensor>> {
  return parseNpz(await readInput("loadNpz", path), path);
}
