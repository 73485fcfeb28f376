/**
 * safetensors: an 8-byte little-endian header length, a JSON header
 * `{name: {dtype, shape, data_offsets: [begin, end]}, __metadata__?}`, then the raw data.
 *
 * ```ts
 * await qb.io.saveSafetensors("weights.safetensors", model.stateDict());
 * const sd = await qb.io.loadSafetensors("weights.safetensors");
 * ```
 */
import * as tf from "@tensorflow/tfjs";
import { writeFile } from "node:fs/promises";
import { BYTES, decodeStorage, tfDType, type StorageDType } from "./dtypeDecode";
import { carriesContext, errors } from "../messages";
import { readInput } from "./readInput";

const CODES: Record<string, StorageDType> = {
  F32: "float32",
  F16: "float16",
  BF16: "bfloat16",
  F64: "float64",
  I64: "int64",
  I32: "int32",
  I16: "int16",
  I8: "int8",
  U8: "uint8",
  BOOL: "bool",
};

export function parseSafetensors(buf: Buffer, name = "<buffer>"): Record<string, tf.Tensor> {
  const fail = (msg: string): never => {
    throw errors.badFile("loadSafetensors", name, msg);
  };
  if (buf.length < 8) fail("the file is shorter than the 8-byte header length (truncated or not safetensors)");
  const headerLen = Number(buf.readBigUInt64LE(0));
  if (headerLen > buf.length - 8)
    fail(
      `the header says ${headerLen} bytes but the file has ${buf.length - 8} after it (truncated or not safetensors)`,
    );
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(buf.toString("utf8", 8, 8 + headerLen));
  } catch {
    return fail("the header is not JSON (not a safetensors file)");
  }
  const data = buf.subarray(8 + headerLen);
  const out: Record<string, tf.Tensor> = {};
  try {
    for (const [key, info] of Object.entries(header)) {
      if (key === "__metadata__") continue;
      const {
        dtype,
        shape,
        data_offsets: offsets,
      } = (info ?? {}) as { dtype: string; shape: number[]; data_offsets: [number, number] };
      const okInt = (v: unknown) => Number.isSafeInteger(v) && (v as number) >= 0;
      if (
        !Array.isArray(shape) ||
        !shape.every(okInt) ||
        !Array.isArray(offsets) ||
        offsets.length !== 2 ||
        !offsets.every(okInt) ||
        offsets[0] > offsets[1]
      ) {
        fail(
          `tensor '${key}': expected { dtype, shape: [non-negative integers], data_offsets: [begin, end] } in the header`,
        );
      }
      const st =
        CODES[dtype] ?? fail(`tensor '${key}' has dtype ${dtype}; supported: ${Object.keys(CODES).join(", ")}`);
      const n = shape.reduce((a, b) => a * b, 1);
      if (!Array.isArray(offsets) || offsets[1] - offsets[0] !== n * BYTES[st] || offsets[1] > data.length) {
        fail(
          `tensor '${key}': data_offsets [${offsets}] do not fit shape [${shape}] of ${dtype} within ${data.length} data bytes`,
        );
      }
      out[key] = tf.tensor(
        decodeStorage(Buffer.from(data.subarray(offsets[0], offsets[1])), st, `${name}: ${key}`),
        shape,
        tfDType(st),
      );
    }
  } catch (e) {
    Object.values(out).forEach((t) => t.dispose());
    if (carriesContext(e)) throw e;
    throw errors.badFile("loadSafetensors", name, (e as Error).message, e);
  }
  return out;
}

export async function loadSafetensors(path: string): Promise<Record<string, tf.Tensor>> {
  return parseSafetensors(await readInput("loadSafetensors", path), path);
}

/** Serialises named tensors (float32 → F32, int32 → I32, bool → BOOL). */
export function serializeSafetensors(tensors: Record<string, tf.Tensor>, metadata?: Record<string, string>): Buffer {
  const header: Record<string, unknown> = metadata ? { __metadata__: metadata } : {};
  const blobs: Buffer[] = [];
  let offset = 0;
  for (const [key, t] of Object.entries(tensors)) {
    if (!(t instanceof tf.Tensor)) throw errors.notATensor("saveSafetensors", `'${key}'`, t);
    const values = t.dataSync();
    let raw: Buffer;
    if (t.dtype === "float32") raw = Buffer.from(new Float32Array(values as Float32Array).buffer);
    else if (t.dtype === "int32") raw = Buffer.from(new Int32Array(values as Int32Array).buffer);
    else if (t.dtype === "bool") raw = Buffer.from(Uint8Array.from(values as Uint8Array));
    else
      throw errors.invalidArgument(
        `saveSafetensors`,
        `'${key}' has dtype ${t.dtype}`,
        `only float32, int32 and bool can be written`,
      );
    const code = { float32: "F32", int32: "I32", bool: "BOOL" }[t.dtype as "float32" | "int32" | "bool"];
    header[key] = { dtype: code, shape: t.shape, data_offsets: [offset, offset + raw.length] };
    blobs.push(raw);
    offset += raw.length;
  }
  let json = Buffer.from(JSON.stringify(header));
  json = Buffer.concat([json, Buffer.alloc((8 - (json.length % 8)) % 8, 0x20)]);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([len, json, ...blobs]);
}

export async function saveSafetensors(
  path: string,
  tensors: Record<string, tf.Tensor>,
  metadata?: Record<string, string>,
): Promise<void> {
  await writeFile(path, serializeSafetensors(tensors, metadata));
}
