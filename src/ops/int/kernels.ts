/**
 * Integer implementations of each op type. Inputs arrive as integer codes at their scales;
 * GEMMs and products accumulate exactly (float64 holds every integer below 2^53), biases are
 * int32 at the accumulator's scale, results are requantized with fixed-point multipliers
 * (fixedPoint.ts) and saturated to the output dtype. LUT ops use a table over every input code.
 */
import type { IrNode, IrQuant } from "../../ir/types";
import { clamp, multiplier, requant, roundHalfEven, roundShift, type Multiplier } from "./fixedPoint";
import { stridedOffsets } from "../../util/strided";
import { broadcastIndex, broadcastShape, sizeOf, sumAxes } from "./shapes";
import { isFloat, rangeOf, requantize, tensorScale, toReal, type Value } from "./value";
import { errors } from "../../messages";
import { exactMatMul, prepareRight, type PreparedRight } from "./exactGemm";

const INT32: [number, number] = [-2147483648, 2147483647];

/** Writes accumulators at per-slot ratio `ratio(slot)` into the node's output dtype (or real values). */
function emit(acc: Float64Array, shape: number[], out: IrQuant, ratio: (i: number) => number, where: string): Value {
  if (isFloat(out)) return { data: acc.map((a, i) => Math.fround(a * ratio(i))), shape, quant: out };
  const so = tensorScale(out, where);
  const [lo, hi] = rangeOf(out);
  const cache = new Map<number, [Multiplier, number]>();
  const data = new Float64Array(acc.length);
  // neighbours mostly share a ratio (one per tensor, or one per channel in runs): look up on a change only
  let lastR = NaN;
  let mm: [Multiplier, number] = [{ m: 0, shift: 0 }, 1];
  for (let i = 0; i < acc.length; i++) {
    const r = ratio(i) / so;
    if (r !== lastR) {
      let found = cache.get(r);
      if (found === undefined) {
        found = r === 0 ? [{ m: 0, shift: 0 }, 1] : [multiplier(Math.abs(r)), Math.sign(r)];
        cache.set(r, found);
      }
      mm = found;
      lastR = r;
    }
    data[i] = requant(acc[i], mm[0], mm[1], lo, hi);
  }
  return { data, shape, quant: out };
}

function transpose2d(data: number[], rows: number, cols: number): number[] {
  const out = new Array<number>(data.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = data[r * cols + c];
  return out;
}

function perChannelScale(q: IrQuant, channels: number): (c: number) => number {
  const s = q.scale as number[];
  return s.length === 1 ? () => s[0] : (c) => s[c % channels];
}

/** Largest |code| of a dtype (the left bound of an exact product). */
const codeBound = (q: IrQuant) => Math.max(...rangeOf(q).map(Math.abs));

/** Transposed [k, n] float32 weights per node, kept across calls (plain arrays: nothing to dispose). */
const weightsT = new WeakMap<IrNode, Float32Array>();
/** The weights split for exact products, per node and group, kept across calls. */
const prepared = new WeakMap<IrNode, Map<string, PreparedRight>>();

function preparedFor(node: IrNode, key: string, make: () => PreparedRight): PreparedRight {
  let m = prepared.get(node);
  if (m === undefined) prepared.set(node, (m = new Map()));
  let r = m.get(key);
  if (r === undefined) m.set(key, (r = make()));
  return r;
}

/** The weight [out, k] as a [k, out] float32 array (codes). */
function weightT(node: IrNode, out: number, k: number, data: ArrayLike<number>): Float32Array {
  let t = weightsT.get(node);
  if (t === undefined) {
    t = new Float32Array(k * out);
    for (let o = 0; o < out; o++) for (let j = 0; j < k; j++) t[j * out + o] = data[o * k + j];
    weightsT.set(node, t);
  }
  return t;
}

export function linear(node: IrNode, x: Value): Value {
  const stored = node.weight!;
  // Paddle's [in, out] layout: read it as [out, in] (its scales are per axis 1, i.e. per output)
  const w =
    node.attrs.weightLayout === "in_out"
      ? {
          ...stored,
          shape: [stored.shape[1], stored.shape[0]],
          data: transpose2d(stored.data, stored.shape[0], stored.shape[1]),
        }
      : stored;
  const [out, inF] = w.shape;
  const sx = tensorScale(x.quant, node.name);
  const sw = perChannelScale(w.quant, out);
  const rows = x.data.length / inF;
  const bias = node.params[0]?.data;
  const qb = bias ? bias.map((b, o) => clamp(roundHalfEven(b / (sx * sw(o))), INT32[0], INT32[1])) : null;
  // the exact integer product on the backend's GEMM (exactGemm.ts)
  const bound = codeBound(x.quant);
  const right = preparedFor(node, `${bound}`, () => prepareRight(weightT(node, out, inF, w.data), inF, out, bound));
  const acc = exactMatMul(Float32Array.from(x.data), rows, right, bound);
  if (qb) for (let r = 0; r < rows; r++) for (let o = 0; o < out; o++) acc[r * out + o] += qb[o];
  return emit(acc, node.output.shape, node.output.quant, (i) => sx * sw(i % out), node.name);
}

/** NCHW convolution with zero padding: exact integer sums (im2col on the backend's GEMM), int32 bias, per-channel requantization. */
export function conv2d(node: IrNode, x: Value): Value {
  const w = node.weight!;
  const [out, inPerGroup, kh, kw] = w.shape;
  const [n, inC, h, wd] = x.shape;
  const groups = (node.attrs.groups as number | undefined) ?? 1;
  const outPerGroup = out / groups;
  const [, , oh, ow] = node.output.shape;
  const [sh, sw] = node.attrs.stride as number[];
  const [ph, pw] = node.attrs.padding as number[];
  const [dh, dw] = node.attrs.dilation as number[];
  const sx = tensorScale(x.quant, node.name);
  const ws = perChannelScale(w.quant, out);
  const bias = node.params[0]?.data;
  const acc = new Float64Array(n * out * oh * ow);
  const k = inPerGroup * kh * kw;
  const m = n * oh * ow;
  const plane = oh * ow;
  if (outPerGroup * k <= 64) {
    // depthwise and other tiny groups: a direct sum costs less than a GEMM call per group
    for (let b = 0; b < n; b++) {
      for (let o = 0; o < out; o++) {
        const qb = bias ? clamp(roundHalfEven(bias[o] / (sx * ws(o))), INT32[0], INT32[1]) : 0;
        const c0 = Math.floor(o / outPerGroup) * inPerGroup;
        for (let y = 0; y < oh; y++) {
          for (let xo = 0; xo < ow; xo++) {
            let s = qb;
            for (let ci = 0; ci < inPerGroup; ci++) {
              for (let ky = 0; ky < kh; ky++) {
                const iy = y * sh - ph + ky * dh;
                if (iy < 0 || iy >= h) continue;
                for (let kx = 0; kx < kw; kx++) {
                  const ix = xo * sw - pw + kx * dw;
                  if (ix < 0 || ix >= wd) continue;
                  s +=
                    x.data[((b * inC + c0 + ci) * h + iy) * wd + ix] *
                    w.data[((o * inPerGroup + ci) * kh + ky) * kw + kx];
                }
              }
            }
            acc[((b * out + o) * oh + y) * ow + xo] = s;
          }
        }
      }
    }
    return emit(acc, node.output.shape, node.output.quant, (i) => sx * ws(Math.floor(i / plane) % out), node.name);
  }
  const wT = weightT(node, out, k, w.data); // [k, out]: group g's columns are g·outPerGroup ...
  const cols = new Float32Array(m * k);
  for (let g = 0; g < groups; g++) {
    // im2col of group g: row (b, y, x), column (ci, ky, kx), zero outside the input
    cols.fill(0);
    for (let b = 0; b < n; b++) {
      for (let ci = 0; ci < inPerGroup; ci++) {
        const src = (b * inC + g * inPerGroup + ci) * h;
        for (let ky = 0; ky < kh; ky++) {
          for (let kx = 0; kx < kw; kx++) {
            const col = (ci * kh + ky) * kw + kx;
            for (let y = 0; y < oh; y++) {
              const iy = y * sh - ph + ky * dh;
              if (iy < 0 || iy >= h) continue;
              const rowBase = (b * oh + y) * ow;
              const srcRow = (src + iy) * wd;
              for (let xo = 0; xo < ow; xo++) {
                const ix = xo * sw - pw + kx * dw;
                if (ix >= 0 && ix < wd) cols[(rowBase + xo) * k + col] = x.data[srcRow + ix];
              }
            }
          }
        }
      }
    }
    const bound = codeBound(x.quant);
    const right = preparedFor(node, `${g}:${bound}`, () => {
      const wg = new Float32Array(k * outPerGroup);
      for (let j = 0; j < k; j++)
        for (let o = 0; o < outPerGroup; o++) wg[j * outPerGroup + o] = wT[j * out + g * outPerGroup + o];
      return prepareRight(wg, k, outPerGroup, bound);
    });
    const prod = exactMatMul(cols, m, right, bound);
    for (let ol = 0; ol < outPerGroup; ol++) {
      const o = g * outPerGroup + ol;
      const qb = bias ? clamp(roundHalfEven(bias[o] / (sx * ws(o))), INT32[0], INT32[1]) : 0;
      for (let b = 0; b < n; b++) {
        const dst = (b * out + o) * plane;
        for (let p = 0; p < plane; p++) acc[dst + p] = qb + prod[(b * plane + p) * outPerGroup + ol];
      }
    }
  }
  return emit(acc, node.output.shape, node.output.quant, (i) => sx * ws(Math.floor(i / plane) % out), node.name);
}

export function matmul(node: IrNode, a: Value, b: Value): Value {
  const [m, k] = a.shape.slice(-2);
  const n = b.shape[b.shape.length - 1];
  const batches = sizeOf(a.shape.slice(0, -2));
  const bBatched = b.shape.length > 2;
  const acc = new Float64Array(batches * m * n);
  const af = Float32Array.from(a.data);
  const bf = Float32Array.from(b.data);
  let right = bBatched ? null : prepareRight(bf, k, n, codeBound(a.quant));
  for (let t = 0; t < batches; t++) {
    if (bBatched) right = prepareRight(bf.subarray(t * k * n, (t + 1) * k * n), k, n, codeBound(a.quant));
    acc.set(exactMatMul(af.subarray(t * m * k, (t + 1) * m * k), m, right as PreparedRight), t * m * n);
  }
  const r = tensorScale(a.quant, node.name) * tensorScale(b.quant, node.name);
  return emit(acc, node.output.shape, node.output.quant, () => r, node.name);
}

/** An operand of an elementwise op: integer codes with scale per channel, or real constants. */
interface Operand {
  data: Float64Array;
  shape: number[];
  /** Scale of element i (codes), or null for real values. */
  scaleAt: ((i: number) => number) | null;
}

function operandOf(v: Value): Operand {
  if (isFloat(v.quant)) return { data: v.data, shape: v.shape, scaleAt: null };
  const s = v.quant.scale as number[];
  if (s.length === 1) return { data: v.data, shape: v.shape, scaleAt: () => s[0] };
  const inner = sizeOf(v.shape) / v.shape[0];
  return { data: v.data, shape: v.shape, scaleAt: (i) => s[Math.floor(i / inner)] };
}

export function mul(node: IrNode, ops: Operand[], scalar: number | undefined): Value {
  const [a, b] = ops;
  if (b === undefined) {
    // tensor × scalar: one multiplier
    if (a.scaleAt === null) throw errors.needsQuantized(node.name, "a float operand needs a QuantStub");
    const sa = a.scaleAt;
    return emit(a.data, a.shape, node.output.quant, (i) => sa(i) * (scalar as number), node.name);
  }
  if (a.scaleAt === null || b.scaleAt === null)
    throw errors.needsQuantized(node.name, "both operands of an integer Mul must be quantized");
  const shape = broadcastShape(a.shape, b.shape, node.name);
  const ia = broadcastIndex(a.shape, shape);
  const ib = broadcastIndex(b.shape, shape);
  const acc = new Float64Array(ia.length);
  for (let i = 0; i < acc.length; i++) acc[i] = a.data[ia[i]] * b.data[ib[i]];
  const sa = a.scaleAt;
  const sb = b.scaleAt;
  return emit(acc, shape, node.output.quant, (i) => sa(ia[i]) * sb(ib[i]), node.name);
}

/** a ± b with both rescaled to the output scale over one shared shift; real operands are folded in. */
export function addSub(
  node: IrNode,
  ops: Operand[],
  sign: 1 | -1,
  scalar: number | undefined,
  scalarIndex: number,
): Value {
  const out = node.output.quant;
  if (isFloat(out)) throw errors.needsQuantized(node.name, `${node.type} needs a quantized output`);
  const so = tensorScale(out, node.name);
  const [lo, hi] = rangeOf(out);
  const terms: Operand[] = [...ops];
  if (scalar !== undefined) terms.splice(scalarIndex, 0, { data: Float64Array.of(scalar), shape: [], scaleAt: null });
  const shape = terms.reduce((s, t) => broadcastShape(s, t.shape, node.name), [] as number[]);
  const ratios = terms.map((t) => (t.scaleAt === null ? 0 : Math.abs(t.scaleAt(0)) / so));
  const maxRatio = Math.max(...ratios, 1e-30);
  const shift = multiplier(maxRatio).shift;
  const idx = terms.map((t) => broadcastIndex(t.shape, shape));
  const data = new Float64Array(sizeOf(shape));
  const ms = terms.map((t) => (t.scaleAt === null ? null : new Map<number, number>()));
  for (let i = 0; i < data.length; i++) {
    let acc = 0;
    terms.forEach((t, k) => {
      const v = t.data[idx[k][i]];
      const sgn = k === 0 ? 1 : sign;
      if (t.scaleAt === null) acc += sgn * roundHalfEven((v / so) * 2 ** shift);
      else {
        const s = t.scaleAt(idx[k][i]);
        const cache = ms[k] as Map<number, number>;
        let m = cache.get(s);
        if (m === undefined) {
          m = Math.round((s / so) * 2 ** shift);
          cache.set(s, m);
        }
        acc += sgn * v * m;
      }
    });
    data[i] = clamp(roundShift(acc, shift), lo, hi);
  }
  return { data, shape, quant: out };
}

export function reduce(node: IrNode, x: Value, mean: boolean): Value {
  const axis = node.attrs.axis as number | number[];
  const axes = Array.isArray(axis) ? axis : [axis];
  const r = sumAxes(x.data, x.shape, axes, Boolean(node.attrs.keepDims));
  const s = tensorScale(x.quant, node.name) / (mean ? r.count : 1);
  return emit(r.data, node.output.shape, node.output.quant, () => s, node.name);
}

export function concat(node: IrNode, xs: Value[]): Value {
  const axisRaw = node.attrs.axis as number;
  const shape = node.output.shape;
  const axis = axisRaw < 0 ? axisRaw + shape.length : axisRaw;
  const parts = xs.map((x) => requantize(x, node.output.quant, node.name));
  const outer = sizeOf(shape.slice(0, axis));
  const data = new Float64Array(sizeOf(shape));
  let p = 0;
  for (let o = 0; o < outer; o++) {
    for (const part of parts) {
      const chunk = sizeOf(part.shape.slice(axis));
      data.set(part.data.subarray(o * chunk, (o + 1) * chunk), p);
      p += chunk;
    }
  }
  return { data, shape, quant: node.output.quant };
}

/** Per-channel y = x · scale[c] + shift[c] (an unfused BatchNorm) on NCHW codes, one shared shift. */
export function batchNorm(node: IrNode, x: Value): Value {
  const out = node.output.quant;
  const [scale, shift] = node.params.map((p) => p.data);
  const channels = x.shape[1];
  const plane = sizeOf(x.shape.slice(2));
  const sx = tensorScale(x.quant, node.name);
  if (isFloat(out))
    return {
      data: x.data.map((q, i) =>
        Math.fround(q * sx * scale[Math.floor(i / plane) % channels] + shift[Math.floor(i / plane) % channels]),
      ),
      shape: x.shape,
      quant: out,
    };
  const so = tensorScale(out, node.name);
  const [lo, hi] = rangeOf(out);
  const bits = multiplier(Math.max(...scale.map((s) => Math.abs((sx * s) / so)), 1e-30)).shift;
  const m = scale.map((s) => Math.round(((sx * s) / so) * 2 ** bits));
  const t = shift.map((b) => roundHalfEven((b / so) * 2 ** bits));
  const data = x.data.map((q, i) => {
    const c = Math.floor(i / plane) % channels;
    return clamp(roundShift(q * m[c] + t[c], bits), lo, hi);
  });
  return { data, shape: x.shape, quant: out };
}

/** Moves the codes, then re-expresses them at the output's scale. */
export function transpose(node: IrNode, x: Value): Value {
  const perm = node.attrs.perm as number[];
  const outShape = perm.map((p) => x.shape[p]);
  const inStrides = x.shape.map((_, i) => sizeOf(x.shape.slice(i + 1)));
  const src = stridedOffsets(
    outShape,
    perm.map((p) => inStrides[p]),
  );
  const data = Float64Array.from(src, (o) => x.data[o]);
  return requantize({ data, shape: outShape, quant: x.quant }, node.output.quant, node.name);
}

/** A table with one entry per input code, built once at convert time. */
export function buildLut(node: IrNode, f: (x: number) => number): (xs: Value[]) => Value {
  const inQ = node.inputs[0].quant;
  const si = tensorScale(inQ, node.name);
  const [ilo, ihi] = rangeOf(inQ);
  const out = node.output.quant;
  const table = new Float64Array(ihi - ilo + 1);
  if (isFloat(out)) {
    for (let q = ilo; q <= ihi; q++) table[q - ilo] = Math.fround(f(Math.fround(q * si)));
  } else {
    const so = tensorScale(out, node.name);
    const [lo, hi] = rangeOf(out);
    for (let q = ilo; q <= ihi; q++) {
      const y = f(Math.fround(q * si)) / so;
      table[q - ilo] = Number.isNaN(y) ? 0 : clamp(roundHalfEven(y), lo, hi);
    }
  }
  return ([x]) => ({ data: x.data.map((q) => table[q - ilo]), shape: x.shape, quant: out });
}

export function quantStub(node: IrNode, x: Value): Value {
  const out = node.output.quant;
  if (!isFloat(x.quant)) return requantize(x, out, node.name);
  if (isFloat(out)) return x;
  const s = Math.fround(tensorScale(out, node.name));
  const inv = Math.fround(1 / s);
  const [lo, hi] = rangeOf(out);
  return {
    data: x.data.map((v) => clamp(roundHalfEven(Math.fround(Math.fround(v) * inv)), lo, hi)),
    shape: x.shape,
    quant: out,
  };
}

export function deQuantStub(x: Value): Value {
  return { data: toReal(x), shape: x.shape, quant: { dtype: "float32", scale: null } };
}

export { operandOf };

/** Real numbers (float32) to the output's dtype: rounded once (half to even) and saturated. */
export function quantizeReal(data: Float64Array, shape: number[], out: IrQuant, where: string): Value {
  if (isFloat(out)) return { data: data.map((v) => Math.fround(v)), shape, quant: out };
  const so = tensorScale(out, where);
  const [lo, hi] = rangeOf(out);
  return { data: data.map((v) => (Number.isNaN(v) ? 0 : clamp(roundHalfEven(v / so), lo, hi))), shape, quant: out };
}

/**
 * An element-wise function of several operands computed in real numbers from their codes (or
 * float values) and quantized once: what the chip's exact-or-table implementation yields up to
 * one step.
 */
export function realElementwise(node: IrNode, values: Value[], fn: (xs: number[]) => number): Value {
  const ops = values.map(operandOf);
  const shape = ops.reduce((s, o) => broadcastShape(s, o.shape, node.name), [] as number[]);
  const idx = ops.map((o) => broadcastIndex(o.shape, shape));
  const data = new Float64Array(sizeOf(shape));
  const xs = new Array<number>(ops.length);
  for (let i = 0; i < data.length; i++) {
    for (let k = 0; k < ops.length; k++) {
      const o = ops[k];
      const j = idx[k][i];
      xs[k] = o.scaleAt === null ? o.data[j] : Math.fround(o.data[j] * o.scaleAt(j));
    }
    data[i] = fn(xs);
  }
  return quantizeReal(data, shape, node.output.quant, node.name);
}

/** a / b, exactly, rounded once. */
export function divide(node: IrNode, values: Value[], scalar: number | undefined, scalarIndex: number): Value {
  const all = [...values];
  if (scalar !== undefined)
    all.splice(scalarIndex, 0, { data: Float64Array.of(scalar), shape: [], quant: { dtype: "float32", scale: null } });
  return realElementwise(node, all, (xs) => xs.slice(1).reduce((a, b) => a / b, xs[0]));
}
