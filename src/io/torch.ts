/**
 * Reads files written by `torch.save` — the zip format of PyTorch >= 1.6 and the legacy format
 * before it (`_use_new_zipfile_serialization=False`) — without running any code: state dicts become objects of named tensors, saved tensors become tensors, nested
 * dicts / lists / tuples / numbers / strings stay values.
 *
 * ```ts
 * const sd = await qb.io.loadTorch("model_path/float-checkpoint.ckpt");   // { "linear1.weight": tf.Tensor, ... }
 * const x = await qb.io.loadTorch("random_data.pt");                     // tf.Tensor [2, 100, 256]
 * ```
 * The caller owns the tensors (dispose them, or `qb.io.disposeAll(value)`).
 */
import * as tf from "@tensorflow/tfjs";
import { stridedOffsets } from "../util/strided";
import { BYTES, decodeStorage, tfDType, type StorageDType } from "./dtypeDecode";
import { isPlainDict, PickleError, unpickle, unpickleAt, type KnownGlobal, type StorageRef } from "./pickle";
import { isZip, readZipEntries, readZipEntry, ZipError } from "./zip";
import { errors } from "../messages";
import { readInput } from "./readInput";

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
  /** Legacy files: this storage is a slice [offset, offset + numel) of the root storage `ref.key`. */
  view?: { offset: number; numel: number };
}

/** A tensor the pickle asked for; built once the storages are known (legacy files keep them after the pickle). */
class PendingTensor {
  constructor(
    readonly handle: StorageHandle,
    readonly offset: number,
    readonly size: number[],
    readonly stride: number[],
  ) {}
}

function known(qualifiedName: string, call: (args: unknown[]) => unknown): KnownGlobal {
  return { qualifiedName, call };
}

/** Bounds on what one tensor may allocate: 2^26 elements (256 MB of float32), and 2^22 for a broadcast view. */
const MAX_ELEMENTS = 2 ** 26;
const BROADCAST_ELEMENTS = 2 ** 22;
const isIndex = (v: unknown): v is number => typeof v === "number" && Number.isInteger(v) && v >= 0;

/** Where the raw bytes of a storage come from: a zip entry, or a span after a legacy pickle. */
type StorageBytes = (key: string) => Buffer | undefined;

class TorchReader {
  private readonly decoded = new Map<string, Float32Array | Int32Array | Uint8Array>();
  private readonly built = new Map<PendingTensor, tf.Tensor>();
  readonly created: tf.Tensor[] = [];
  /** Storage keys the pickle referred to, with their dtype (legacy files need it to size the data). */
  readonly storageDTypes = new Map<string, StorageDType>();
  bytesOf: StorageBytes = () => undefined;

  constructor(private readonly file: string) {}

  findGlobal = (module: string, name: string): KnownGlobal | undefined => {
    if (module === "collections" && name === "OrderedDict") return known("collections.OrderedDict", () => ({}));
    if (module === "torch" && name in STORAGE_TYPES)
      return { ...known(`torch.${name}`, () => STORAGE_TYPES[name]), storageDType: STORAGE_TYPES[name] } as KnownGlobal;
    if (module === "torch._utils") {
      if (name === "_rebuild_tensor_v2" || name === "_rebuild_tensor") {
        return known(`torch._utils.${name}`, (a) => this.pending(a[0], a[1], a[2], a[3]));
      }
      if (name === "_rebuild_parameter" || name === "_rebuild_parameter_with_state")
        return known(`torch._utils.${name}`, (a) => a[0]);
    }
    return undefined;
  };

  persistentLoad = (pid: unknown): StorageHandle => {
    const dtype = Array.isArray(pid) ? (pid[1] as { storageDType?: StorageDType } | null)?.storageDType : undefined;
    if (!Array.isArray(pid) || pid[0] !== "storage" || dtype === undefined || !isIndex(pid[4])) {
      throw new PickleError("a persistent id that is not a torch storage reference");
    }
    const key = String(pid[2]);
    const seenAs = this.storageDTypes.get(key);
    if (seenAs !== undefined && seenAs !== dtype)
      throw new PickleError(`storage ${key} is referred to as both ${seenAs} and ${dtype}`);
    this.storageDTypes.set(key, dtype);
    const ref: StorageRef = { kind: "storage", storageType: dtype, key, location: String(pid[3]), numel: pid[4] };
    const viewMeta = pid[5];
    if (Array.isArray(viewMeta)) {
      // legacy storage view: (view_key, offset, size) inside the root storage
      const [, offset, numel] = viewMeta as unknown[];
      if (!isIndex(offset) || !isIndex(numel))
        throw new PickleError("a storage view with an offset or size that is not a count");
      return { ref, dtype, view: { offset, numel } };
    }
    return { ref, dtype };
  };

  private storage(h: StorageHandle): Float32Array | Int32Array | Uint8Array {
    let values = this.decoded.get(h.ref.key);
    if (values === undefined) {
      const bytes = this.bytesOf(h.ref.key);
      if (bytes === undefined)
        throw errors.corruptData(`storage ${h.ref.key} is missing from the file (the file is incomplete)`);
      values = decodeStorage(bytes, h.dtype, `${this.file}: storage ${h.ref.key}`);
      if (h.view === undefined && values.length < h.ref.numel) {
        throw errors.corruptData(
          `storage ${h.ref.key} holds ${values.length} elements, the pickle says ${h.ref.numel} (the file is truncated)`,
        );
      }
      this.decoded.set(h.ref.key, values);
    }
    if (h.view === undefined) return values;
    if (h.view.offset + h.view.numel > values.length)
      throw errors.corruptData(
        `a view of storage ${h.ref.key} reaches past its ${values.length} elements (the file is inconsistent)`,
      );
    return values.subarray(h.view.offset, h.view.offset + h.view.numel);
  }

  private pending(h: unknown, offset: unknown, size: unknown, stride: unknown): PendingTensor {
    if (h === null || typeof h !== "object" || !("ref" in h))
      throw new PickleError("a tensor rebuilt from something that is not a storage");
    if (
      !isIndex(offset) ||
      !Array.isArray(size) ||
      !Array.isArray(stride) ||
      size.length !== stride.length ||
      !size.every(isIndex) ||
      !stride.every(isIndex)
    ) {
      throw new PickleError("a tensor rebuilt with an offset, size or stride that is not a list of counts");
    }
    const handle = h as StorageHandle;
    const n = size.reduce((a: number, b: number) => a * b, 1);
    // a view reads at most its storage's elements, unless it broadcasts (stride 0): bound those too
    const storageElements = handle.view?.numel ?? handle.ref.numel;
    if (n > MAX_ELEMENTS || (n > storageElements && n > BROADCAST_ELEMENTS)) {
      throw new PickleError(
        `a tensor of shape [${size.join(", ")}] (${n} elements) over a storage of ${storageElements} elements is larger than this reader accepts`,
      );
    }
    return new PendingTensor(handle, offset, size, stride);
  }

  private build(p: PendingTensor): tf.Tensor {
    const data = this.storage(p.handle);
    const n = p.size.reduce((a, b) => a * b, 1);
    const last = p.offset + p.size.reduce((acc, s, d) => acc + (s > 0 ? (s - 1) * p.stride[d] : 0), 0);
    if (n > 0 && last >= data.length)
      throw errors.corruptData(
        `a tensor view reads element ${last} of a storage of ${data.length} (the file is inconsistent)`,
      );
    const Ctor = data.constructor as { new (n: number): Float32Array | Int32Array | Uint8Array };
    const out = new Ctor(n);
    const offsets = stridedOffsets(p.size, p.stride, p.offset);
    for (let i = 0; i < n; i++) out[i] = data[offsets[i]];
    const t = tf.tensor(out, p.size, tfDType(p.handle.dtype));
    this.created.push(t);
    return t;
  }

  /** Replaces every pending tensor inside a loaded value by its tensor (shared ones stay shared; cycles are safe). */
  resolve(v: unknown, seen = new Set<object>()): unknown {
    if (v instanceof PendingTensor) {
      let t = this.built.get(v);
      if (t === undefined) this.built.set(v, (t = this.build(v)));
      return t;
    }
    if (v === null || typeof v !== "object" || seen.has(v)) return v;
    seen.add(v);
    if (Array.isArray(v)) for (let i = 0; i < v.length; i++) v[i] = this.resolve(v[i], seen);
    else if (isPlainDict(v)) for (const k of Object.keys(v)) v[k] = this.resolve(v[k], seen);
    return v;
  }
}

/** Loads a `torch.save` file. Errors name the file and say what was wrong; no tensor leaks on error. */
export async function loadTorch(path: string): Promise<unknown> {
  return parseTorch(await readInput("loadTorch", path), path);
}

/** The first pickle of a legacy file: torch's magic number 0x1950a86a20f9469cfc6c (as a double). */
const LEGACY_MAGIC = Number(0x1950a86a20f9469cfc6cn);
const LEGACY_PROTOCOL = 1001;
const NO_GLOBALS = {
  findGlobal: () => undefined,
  persistentLoad: () => {
    throw new PickleError("a persistent id in a header pickle");
  },
};

/** A PROTO opcode (0x80) followed by a protocol number torch.save uses. */
const looksLikePickle = (buf: Buffer) => buf.length > 2 && buf[0] === 0x80 && buf[1] >= 2 && buf[1] <= 5;

/**
 * The legacy (pre-1.6, `_use_new_zipfile_serialization=False`) layout: pickles of the magic
 * number, the protocol version and a sys-info dict, then the object's pickle, then a pickle of
 * the storage keys in order, then per key an int64 element count and the raw little-endian bytes.
 */
function parseLegacy(buf: Buffer, reader: TorchReader): unknown {
  const magic = unpickleAt(buf, 0, NO_GLOBALS);
  if (magic.value !== LEGACY_MAGIC)
    throw errors.corruptData("it starts with a pickle but not with torch's magic number: it is not a torch.save file");
  const version = unpickleAt(buf, magic.end, NO_GLOBALS);
  if (version.value !== LEGACY_PROTOCOL)
    throw errors.corruptData(`legacy protocol version ${String(version.value)}; this reader knows ${LEGACY_PROTOCOL}`);
  const sysInfo = unpickleAt(buf, version.end, NO_GLOBALS);
  const info = sysInfo.value as { little_endian?: unknown } | null;
  if (!isPlainDict(info)) throw errors.corruptData("the legacy header's system info is not a dict");
  if (info.little_endian !== true) throw errors.corruptData("big-endian checkpoints are not supported");
  const main = unpickleAt(buf, sysInfo.end, { findGlobal: reader.findGlobal, persistentLoad: reader.persistentLoad });
  const keys = unpickleAt(buf, main.end, NO_GLOBALS);
  if (!Array.isArray(keys.value) || !keys.value.every((k) => typeof k === "string"))
    throw errors.corruptData("the list of storage keys after the pickle is not a list of strings");
  const spans = new Map<string, Buffer>();
  let p = keys.end;
  for (const key of keys.value as string[]) {
    const dtype = reader.storageDTypes.get(key);
    if (dtype === undefined)
      throw errors.corruptData(`storage ${key} is stored but no tensor refers to it (the file is inconsistent)`);
    if (p + 8 > buf.length)
      throw errors.corruptData(`storage ${key}: the file ends before its size (the file is truncated)`);
    const numel = buf.readBigInt64LE(p);
    p += 8;
    const bytes = Number(numel) * BYTES[dtype];
    if (numel < 0n || p + bytes > buf.length)
      throw errors.corruptData(
        `storage ${key}: ${numel} elements of ${dtype} declared, ${buf.length - p} bytes left (the file is truncated)`,
      );
    spans.set(key, buf.subarray(p, p + bytes));
    p += bytes;
  }
  reader.bytesOf = (key) => spans.get(key);
  return reader.resolve(main.value);
}

/** Parses the bytes of a `torch.save` file, zip (PyTorch >= 1.6) or legacy (see loadTorch). */
export function parseTorch(buf: Buffer, name = "<buffer>"): unknown {
  const zip = isZip(buf);
  if (!zip && !looksLikePickle(buf)) {
    throw errors.badFile(
      "loadTorch",
      name,
      "not a PyTorch checkpoint: neither the zip format nor a legacy pickle; check the path",
    );
  }
  const reader = new TorchReader(name);
  try {
    if (!zip) return parseLegacy(buf, reader);
    const entries = readZipEntries(buf);
    const pkl = [...entries.keys()].find((k) => k === "data.pkl" || k.endsWith("/data.pkl"));
    if (pkl === undefined)
      throw errors.corruptData("the archive has no data.pkl: it is a zip file but not a torch.save checkpoint");
    const prefix = pkl.slice(0, pkl.length - "data.pkl".length);
    const order = entries.get(`${prefix}byteorder`);
    if (order !== undefined && readZipEntry(buf, order).toString() !== "little")
      throw errors.corruptData("big-endian checkpoints are not supported");
    reader.bytesOf = (key) => {
      const entry = entries.get(`${prefix}data/${key}`);
      return entry === undefined ? undefined : readZipEntry(buf, entry);
    };
    return reader.resolve(
      unpickle(readZipEntry(buf, entries.get(pkl)!), {
        findGlobal: reader.findGlobal,
        persistentLoad: reader.persistentLoad,
      }),
    );
  } catch (e) {
    reader.created.forEach((t) => t.dispose());
    const msg = e instanceof Error ? e.message : String(e);
    const what = e instanceof ZipError ? "damaged archive: " : zip ? "" : "legacy format: ";
    throw errors.badFile("loadTorch", name, `${what}${msg}`, e);
  }
}

/** Disposes every tensor inside a loaded value (dicts, lists, nested). */
export function disposeAll(value: unknown, seen = new Set<object>()): void {
  if (value instanceof tf.Tensor) value.dispose();
  else if (value === null || typeof value !== "object" || seen.has(value)) return;
  seen.add(value);
  if (Array.isArray(value)) value.forEach((v) => disposeAll(v, seen));
  else Object.values(value).forEach((v) => disposeAll(v, seen));
}
