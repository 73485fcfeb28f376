/**
 * Flat offsets of a strided view, in row-major order over `shape`: element k at index
 * (i0, i1, ...) reads `offset + Σ i_d · strides[d]`. Views of torch storages, broadcasts
 * (stride 0) and transposes (permuted strides) are all this walk.
 */
export function stridedOffsets(shape: number[], strides: number[], offset = 0): Int32Array {
  const n = shape.reduce((a, b) => a * b, 1);
  const out = new Int32Array(n);
  const rank = shape.length;
  const counter = new Array<number>(rank).fill(0);
  let pos = offset;
  for (let k = 0; k < n; k++) {
    out[k] = pos;
    for (let d = rank - 1; d >= 0; d--) {
      counter[d]++;
      pos += strides[d];
      if (counter[d] < shape[d]) break;
      pos -= strides[d] * shape[d];
      counter[d] = 0;
    }
  }
  return out;
}
