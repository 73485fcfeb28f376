/**
 * Just enough of a WebAssembly binary writer to build quantbook's fused kernels at load time
 * (no toolchain needed at install). Instructions are written as byte arrays; `op` and `simd`
 * name the opcodes used.
 */

export function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
}

export function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) {
      out.push(b);
      return out;
    }
    out.push(b | 0x80);
  }
}

export const T = { i32: 0x7f, f32: 0x7d, f64: 0x7c, v128: 0x7b } as const;

/** Scalar opcodes. */
export const op = {
  block: [0x02, 0x40],
  loop: [0x03, 0x40],
  end: [0x0b],
  br: (d: number) => [0x0c, ...uleb(d)],
  brIf: (d: number) => [0x0d, ...uleb(d)],
  get: (i: number) => [0x20, ...uleb(i)],
  set: (i: number) => [0x21, ...uleb(i)],
  tee: (i: number) => [0x22, ...uleb(i)],
  i32: (v: number) => [0x41, ...sleb(v)],
  i32Add: [0x6a],
  i32Sub: [0x6b],
  i32Shl: [0x74],
  i32And: [0x71],
  i32GeU: [0x4f],
  f64: (v: number) => {
    const b = Buffer.alloc(8);
    b.writeDoubleLE(v);
    return [0x44, ...b];
  },
  f32Load: [0x2a, 0x02, 0x00],
  f32Store: [0x38, 0x02, 0x00],
  f32Mul: [0x94],
  f32Sub: [0x93],
  f32Min: [0x96],
  f32Max: [0x97],
  f32Nearest: [0x90],
  f64Promote: [0xbb],
  f64Mul: [0xa2],
  f64Add: [0xa0],
};

const s = (code: number, ...imm: number[]) => [0xfd, ...uleb(code), ...imm];
/** SIMD opcodes (0xfd prefix). */
export const simd = {
  load: s(0x00, 0x04, 0x00),
  store: s(0x0b, 0x04, 0x00),
  f32x4Splat: s(0x13),
  f64x2Splat: s(0x14),
  f32x4Nearest: s(0x6a),
  f32x4Sub: s(0xe5),
  f32x4Mul: s(0xe6),
  f32x4Min: s(0xe8),
  f32x4Max: s(0xe9),
  f64x2PromoteLow: s(0x5f),
  f64x2Add: s(0xf0),
  f64x2Mul: s(0xf2),
  f64x2Extract: (lane: number) => s(0x21, lane),
  /** Moves lanes 2, 3 of an f32x4 into lanes 0, 1. */
  highToLow: s(0x0d, 8, 9, 10, 11, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15),
};

export interface FuncDef {
  name: string;
  params: number[];
  results: number[];
  /** Extra locals, by type. */
  locals: number[];
  body: number[][];
}

function section(id: number, payload: number[]): number[] {
  return [id, ...uleb(payload.length), ...payload];
}

function vec(items: number[][]): number[] {
  return [...uleb(items.length), ...items.flat()];
}

function str(x: string): number[] {
  const b = [...Buffer.from(x, "utf8")];
  return [...uleb(b.length), ...b];
}

/** A module importing `env.memory` and exporting the given functions. */
export function assemble(funcs: FuncDef[]): Uint8Array {
  const types = funcs.map((f) => [0x60, ...vec(f.params.map((p) => [p])), ...vec(f.results.map((r) => [r]))]);
  const imports = [[...str("env"), ...str("memory"), 0x02, 0x00, 0x01]];
  const code = funcs.map((f) => {
    const locals = vec(f.locals.map((t) => [0x01, t]));
    const body = [...locals, ...f.body.flat(), 0x0b];
    return [...uleb(body.length), ...body];
  });
  return Uint8Array.from([
    0x00,
    0x61,
    0x73,
    0x6d,
    0x01,
    0x00,
    0x00,
    0x00,
    ...section(1, vec(types)),
    ...section(2, vec(imports)),
    ...section(3, vec(funcs.map((_, i) => uleb(i)))),
    ...section(7, vec(funcs.map((f, i) => [...str(f.name), 0x00, ...uleb(i)]))),
    ...section(10, vec(code)),
  ]);
}
