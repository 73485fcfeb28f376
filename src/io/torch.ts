/**
 * Reads files written by `torch.save` (the zip format of PyTorch >= 1.6) without running any
 * code: state dicts become objects of named tensors, saved tensors become tensors, nested
 * dicts / lists / tuples / numbers / strings stay values.
 *
 * ```ts
 * const sd = await qb.io.loadTorch("model_path/float-checkpoint.ckpt");   // { "linear1.weight": tf.Tensor, ... }
 * const x = await qb.io.loadTorch("random_data.pt");                     // tf.Tensor [2, 100, 256]
 * ```
 * The caller owns the tensors (dispose them, or `qb.io.disposeAll(value)`).
 */
import * as tf from "@tensorflow/tfjs";
import { readFile } from "node:fs/promises";
import { stridedOffsets } from "../util/strided";
import { decodeStorage, tfDType, type StorageDType } from "./dtypeDecode";
import { PickleError, unpickle, type KnownGlobal, type StorageRef } from "./pickle";
import { isZip, readZipEntries, readZipEntry, ZipError, type ZipEntry } from "./zip";
import { errors } from "../messages";

const STORAGE_TYPES: Record<string, StorageDType> = {
  FloatStorage: "float32",
  HalfStorage: "float16",
  BFloat16Storage: "bfloat16",
  DoubleStorage: "float64",
  LongStorage: "int64",
  IntStorage: "int32",
  ShortStorage: "int16",
  CharStorage: "int8",
  ByteStorage: "uint8",
  BoolStorage: "bool",
};

interface StorageHandle {
  ref: StorageRef;
  dtype: StorageDType;
}

function known(qualifiedName: string, call: (args: unknown[]) => unknown): KnownGlobal {
  return { qualifiedName, call };
}

class TorchReader {
  private readonly decoded = new Map<string, Float32Array | Int32Array | Uint8Array>();
  readonly created: tf.Tensor[] = [];

  constructor(
    private readonly file: string,
    private readonly buf: Buffer,
    private readonly entries: Map<string, ZipEntry>,
    private readonly prefix: string,
  ) {}

  findGlobal = (module: string, name: string): KnownGlobal | undefined => {
    if (module === "collections" && name === "OrderedDict") return known("collections.OrderedDict", () => ({}));
    if (module === "torch" && name in STORAGE_TYPES) return { ...known(`torch.${name}`, () => STORAGE_TYPES[name]), storageDType: STORAGE_TYPES[name] } as KnownGlobal;
    if (module === "torch._utils") {
      if (name === "_rebuild_tensor_v2" || name === "_rebuild_tensor") {
        return known(`torch._utils.${name}`, (a) => this.rebuildTensor(a[0] as StorageHandle, a[1] as number, a[2] as number[], a[3] as number[]));
      }
      if (name === "_rebuild_parameter" || name === "_rebuild_parameter_with_state") return known(`torch._utils.${name}`, (a) => a[0]);
    }
    return undefined;
  };

  persistentLoad = (pid: unknown): StorageHandle => {
    const dtype = Array.isArray(pid) ? (pid[1] as { storageDType?: StorageDType } | null)?.storageDType : undefined;
    if (!Array.isArray(pid) || pid[0] !== "storage" || dtype === undefined) {
      throw new PickleError("a persistent id that is not a torch storage reference");
    }
    const ref: StorageRef = { kind: "storage", storageType: dtype, key: String(pid[2]), location: String(pid[3]), numel: Number(pid[4]) };
    return { ref, dtype };
  };

  private storage(h: StorageHandle): Float32Array | Int32Array | Uint8Array {
    const cached = this.decoded.get(h.ref.key);
    if (cached) return cached;
    const entry = this.entries.get(`${this.prefix}data/${h.ref.key}`);
    if (entry === undefined) throw new Error(`storage ${h.ref.key} is missing from the archive (the file is incomplete)`);
    const bytes = readZipEntry(this.buf, entry);
    const values = decodeStorage(bytes, h.dtype, `${this.file}: storage ${h.ref.key}`);
    if (values.length < h.ref.numel) throw new Error(`storage ${h.ref.key} holds ${values.length} elements, the pickle says ${h.ref.numel} (the file is truncated)`);
    this.decoded.set(h.ref.key, values);
    return values;
  }

  private rebuildTensor(h: StorageHandle, offset: number, size: number[], stride: number[]): tf.Tensor {
    if (h === null || typeof h !== "object" || !("ref" in h)) throw new PickleError("a tensor rebuilt from something that is not a storage");
    const data = this.storage(h);
    const n = size.reduce((a, b) => a * b, 1);
    const Ctor = data.constructor as { new (n: number): Float32Array | Int32Array | Uint8Array };
    const out = new Ctor(n);
    const offsets = stridedOffsets(size, stride, offset);
    for (let i = 0; i < n; i++) {
      const src = offsets[i];
      if (src < 0 || src >= data.length) throw new Error(`a tensor view reads element ${src} of a storage of ${data.length} (the file is inconsistent)`);
      out[i] = data[src];
    }
    const t = tf.tensor(out, size, tfDType(h.dtype));
    this.created.push(t);
    return t;
  }
}

/** Loads a `torch.save` file. Errors name the file and say what was wrong; no tensor leaks on error. */
export async function loadTorch(path: string): Promise<unknown> {
  let buf: Buffer;
  try {
    buf = await readFile(path);
  } catch (e) {
    throw errors.badFile("loadTorch", path, `cannot read it: ${(e as Error).message}`, e);
  }
  return parseTorch(buf, path);
}

/** Parses the bytes of a `torch.save` file (see loadTorch). */
export function parseTorch(buf: Buffer, name = "<buffer>"): unknown {
  if (!isZip(buf)) {
    const legacy = buf.length > 2 && buf[0] === 0x80;
    throw errors.badFile(
      "loadTorch",
      name,
      "not a PyTorch checkpoint in the zip format" +
        (legacy ? " (it looks like the legacy pre-1.6 format; re-save it with torch.save(obj, path) on PyTorch >= 1.6)" : " (no zip header); check the path"),
    );
  }
  let reader: TorchReader | null = null;
  try {
    const entries = readZipEntries(buf);
    const pkl = [...entries.keys()].find((k) => k === "data.pkl" || k.endsWith("/data.pkl"));
    if (pkl === undefined) throw new Error("the archive has no data.pkl: it is a zip file but not a torch.save checkpoint");
    const prefix = pkl.slice(0, pkl.length - "data.pkl".length);
    const order = entries.get(`${prefix}byteorder`);
    if (order !== undefined && readZipEntry(buf, order).toString() !== "little") throw new Error("big-endian checkpoints are not supported");
    reader = new TorchReader(name, buf, entries, prefix);
    return unpickle(readZipEntry(buf, entries.get(pkl)!), { findGlobal: reader.findGlobal, persistentLoad: reader.persistentLoad });
  } catch (e) {
    reader?.created.forEach((t) => t.dispose());
    const msg = e instanceof Error ? e.message : String(e);
    throw errors.badFile("loadTorch", name, `${e instanceof ZipError ? "damaged archive: " : ""}${msg}`, e);
  }
}

/** Disposes every tensor inside a loaded value (dicts, lists, nested). */
export function disposeAll(value: unknown): void {
  if (value instanceof tf.Tensor) value.dispose();
  else if (Array.isArray(value)) value.forEach(disposeAll);
  else if (value !== null && typeof value === "object") Object.values(value).forEach(disposeAll);
}
