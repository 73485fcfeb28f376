import { stridedOffsets } from "../../util/strided";
import { errors } from "../../messages";

/** Shape helpers for the integer interpreter (row-major Float64Array data). */

export const sizeOf = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

export function broadcastShape(a: number[], b: number[], where: string): number[] {
  const rank = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < rank; i++) {
    const da = a[a.length - rank + i] ?? 1;
    const db = b[b.length - rank + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1)
      throw errors.shapeMismatch(where, `shapes [${a}] and [${b}]`, "shapes that broadcast against each other");
    out.push(Math.max(da, db));
  }
  return out;
}

/** For each output element of a broadcast, the flat index into an operand of `shape`. */
export function broadcastIndex(shape: number[], out: number[]): Int32Array {
  const rank = out.length;
  const strides = new Array<number>(rank).fill(0);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    strides[rank - shape.length + i] = shape[i] === 1 ? 0 : s;
    s *= shape[i];
  }
  return stridedOffsets(out, strides);
}

/** Sums over the given axes; returns the sums, the reduced shape and how many were summed. */
export function sumAxes(
  data: Float64Array,
  shape: number[],
  axes: number[],
  keepDims: boolean,
): { data: Float64Array; shape: number[]; count: number } {
  const rank = shape.length;
  const ax = new Set(axes.map((a) => (a < 0 ? a + rank : a)));
  const kept = shape.map((d, i) => (ax.has(i) ? 1 : d));
  const out = new Float64Array(sizeOf(kept));
  const idx = broadcastIndex(kept, shape); // maps every input element to its output slot
  for (let i = 0; i < data.length; i++) out[idx[i]] += data[i];
  const count = [...ax].reduce((p, a) => p * shape[a], 1);
  return { data: out, shape: keepDims ? kept : shape.filter((_, i) => !ax.has(i)), count };
}
