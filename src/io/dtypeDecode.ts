/** Decoding of raw little-endian storages into the dtypes tfjs has (float32, int32, bool). */
import { errors } from "../messages";

export type StorageDType =
  "float32" | "float16" | "bfloat16" | "float64" | "int64" | "int32" | "int16" | "int8" | "uint8" | "bool";

export const BYTES: Record<StorageDType, number> = {
  float32: 4,
  float16: 2,
  bfloat16: 2,
  float64: 8,
  int64: 8,
  int32: 4,
  int16: 2,
  int8: 1,
  uint8: 1,
  bool: 1,
};

function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * 2 ** -14 * (frac / 1024);
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * 2 ** (exp - 15) * (1 + frac / 1024);
}

/** Element values of a storage as numbers (float32 / int32 / 0-1 arrays). */
export function decodeStorage(
  bytes: Buffer,
  dtype: StorageDType,
  where: string,
): Float32Array | Int32Array | Uint8Array {
  const n = Math.floor(bytes.length / BYTES[dtype]);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  switch (dtype) {
    case "float32": {
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = dv.getFloat32(4 * i, true);
      return out;
    }
    case "float64": {
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = dv.getFloat64(8 * i, true);
      return out;
    }
    case "float16": {
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = halfToFloat(dv.getUint16(2 * i, true));
      return out;
    }
    case "bfloat16": {
      const out = new Float32Array(n);
      const tmp = new DataView(new ArrayBuffer(4));
      for (let i = 0; i < n; i++) {
        tmp.setUint32(0, dv.getUint16(2 * i, true) << 16);
        out[i] = tmp.getFloat32(0);
      }
      return out;
    }
    case "int64": {
      const out = new Int32Array(n);
      for (let i = 0; i < n; i++) {
        const v = dv.getBigInt64(8 * i, true);
        if (v > 2147483647n || v < -2147483648n) {
          throw errors.corruptData(
            `${where}: int64 value ${v} at element ${i} does not fit in int32, the widest integer tfjs has; convert it to float before saving`,
          );
        }
        out[i] = Number(v);
      }
      return out;
    }
    case "int32": {
      const out = new Int32Array(n);
      for (let i = 0; i < n; i++) out[i] = dv.getInt32(4 * i, true);
      return out;
    }
    case "int16": {
      const out = new Int32Array(n);
      for (let i = 0; i < n; i++) out[i] = dv.getInt16(2 * i, true);
      return out;
    }
    case "int8":
      return Int32Array.from(new Int8Array(bytes.buffer, bytes.byteOffset, n));
    case "uint8":
      return Int32Array.from(new Uint8Array(bytes.buffer, bytes.byteOffset, n));
    case "bool":
      return Uint8Array.from(bytes.subarray(0, n), (b) => (b ? 1 : 0));
  }
}

/** The tfjs dtype a storage dtype becomes. */
export function tfDType(d: StorageDType): "float32" | "int32" | "bool" {
  if (d === "bool") return "bool";
  return d.startsWith("float") || d === "bfloat16" ? "float32" : "int32";
}
