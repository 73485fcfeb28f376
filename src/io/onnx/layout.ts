/**
 * Layout plumbing removed at import. TensorFlow graphs converted by tf2onnx keep NHWC tensors
 * between NCHW convolutions, so Transposes wrap every conv; quantized, each is an op of its own
 * (a point in the sensitivity table, a chip-rule check, a latency cost) that the network does not
 * have. This pass moves a Transpose down through ops that do not care about layout (elementwise
 * ops with a scalar or broadcast-free operand, two inputs transposed alike, Concat) until it meets
 * its inverse, and then removes both — what converters' own optimizers do. The graph computes the
 * same values; nothing is moved past an op whose meaning depends on the layout.
 */
import type { AttrValue, ConstValue, OnnxGraph, OnnxNode } from "./proto";
import { allOps } from "../../ops";

/**
 * Ops that compute each element from the same element of their data input (any other inputs are
 * scalars: Clip's bounds): the ONNX ops registry entries import that are elementwise (Relu,
 * Sigmoid, Mish, ...), and these.
 */
const UNARY = new Set([
  ...allOps()
    .filter((d) => d.elementwise && d.onnxImport !== undefined)
    .map((d) => (d.onnxImport as { op: string }).op),
  "Erf",
  "Identity",
  "Cast",
  "Floor",
  "Ceil",
  "Round",
  "Sign",
  "Not",
  "Clip",
]);
/** Elementwise ops of two operands (broadcasting). */
const BINARY = new Set([
  "Add",
  "Sub",
  "Mul",
  "Div",
  "Max",
  "Min",
  "Pow",
  "Equal",
  "Less",
  "Greater",
  "LessOrEqual",
  "GreaterOrEqual",
  "And",
  "Or",
  "Xor",
  "PRelu",
]);

const permOf = (n: OnnxNode): number[] | null => (Array.isArray(n.attrs.perm) ? (n.attrs.perm as number[]) : null);
const isInverse = (p: number[], q: number[]) => p.length === q.length && q.every((qi, i) => p[qi] === i);
const sameList = (a: number[], b: number[]) => a.length === b.length && a.every((v, i) => v === b[i]);

/** A constant's values transposed by `perm` (the data of `Transpose(c, perm)`). */
function transposeConst(c: ConstValue, perm: number[]): ConstValue {
  const dims = perm.map((p) => c.dims[p]);
  const strides = c.dims.map((_, i) => c.dims.slice(i + 1).reduce((a, b) => a * b, 1));
  const out = new (c.data.constructor as new (n: number) => ConstValue["data"])(c.data.length);
  const idx = new Array<number>(dims.length).fill(0);
  for (let k = 0; k < out.length; k++) {
    let src = 0;
    for (let j = 0; j < dims.length; j++) src += idx[j] * strides[perm[j]];
    out[k] = c.data[src];
    for (let j = dims.length - 1; j >= 0; j--) {
      if (++idx[j] < dims[j]) break;
      idx[j] = 0;
    }
  }
  return { data: out, dims, dtype: c.dtype };
}

/**
 * Cancels Transpose pairs through layout-agnostic ops, in place. Returns how many nodes it
 * removed. Call before planning (the node order is restored by sortNodes).
 */
export function cancelTransposes(g: OnnxGraph): number {
  const before = g.nodes.length;
  const outputs = new Set(g.outputs);
  // constants by name: initializers and Constant nodes (their `value`)
  const constOf = (name: string): ConstValue | undefined => {
    const init = g.initializers.get(name);
    if (init !== undefined) return init;
    const n = g.nodes.find((m) => m.opType === "Constant" && m.outputs[0] === name);
    const v = n?.attrs.value as AttrValue;
    return v !== null && typeof v === "object" && !Array.isArray(v) ? (v as ConstValue) : undefined;
  };
  let fresh = 0;
  const newName = (base: string) => `${base}__layout${fresh++}`;
  for (let guard = 0; guard < 100 * before + 100; guard++) {
    const consumers = new Map<string, OnnxNode[]>();
    for (const n of g.nodes)
      for (const x of new Set(n.inputs)) if (x !== "") consumers.set(x, [...(consumers.get(x) ?? []), n]);
    const producer = new Map<string, OnnxNode>();
    for (const n of g.nodes) for (const o of n.outputs) producer.set(o, n);
    const changed = g.nodes.some((t) => {
      if (t.opType !== "Transpose" || t.domain !== "" || outputs.has(t.outputs[0])) return false;
      const p = permOf(t);
      if (p === null) return false;
      const [a, out] = [t.inputs[0], t.outputs[0]];
      const users = consumers.get(out) ?? [];
      if (users.length === 0) return false;
      // readers that undo it read the untransposed value instead (a residual skip keeps it for its other readers)
      const undo = users.filter(
        (u) => u.opType === "Transpose" && isInverse(p, permOf(u) ?? []) && !outputs.has(u.outputs[0]),
      );
      if (undo.length > 0) {
        for (const u of undo) {
          for (const n of g.nodes) n.inputs = n.inputs.map((x) => (x === u.outputs[0] ? a : x));
        }
        g.nodes = g.nodes.filter((n) => !undo.includes(n) && (n !== t || undo.length < users.length));
        return true;
      }
      if (users.length !== 1) return false;
      const c = users[0];
      if (c.domain !== "" || c.outputs.length !== 1) return false;
      const moveBelow = (inputs: string[], attrs: Record<string, AttrValue> = c.attrs) => {
        const mid = newName(c.outputs[0]);
        c.inputs = inputs;
        c.attrs = attrs;
        const final = c.outputs[0];
        c.outputs = [mid];
        t.inputs = [mid];
        t.outputs = [final];
        // the Transpose now follows the op
        g.nodes = g.nodes.filter((n) => n !== t);
        g.nodes.splice(g.nodes.indexOf(c) + 1, 0, t);
      };
      if (UNARY.has(c.opType) && c.inputs[0] === out && c.inputs.slice(1).every((x) => x !== out)) {
        moveBelow([a, ...c.inputs.slice(1)]);
        return true;
      }
      if (BINARY.has(c.opType) && c.inputs.length === 2) {
        const k = c.inputs[0] === out ? 0 : 1;
        const other = c.inputs[1 - k];
        if (other === out) {
          moveBelow([a, a]);
          return true;
        }
        const inputs = c.inputs.slice();
        inputs[k] = a;
        const cv = constOf(other);
        if (cv !== undefined) {
          const size = cv.dims.reduce((x, y) => x * y, 1);
          if (size <= 1) {
            moveBelow(inputs);
            return true;
          }
          if (cv.dims.length !== p.length) return false;
          // a full-rank constant: the same values, in the untransposed layout
          const name = newName(other);
          g.initializers.set(
            name,
            transposeConst(
              cv,
              p.map((_, i) => p.indexOf(i)),
            ),
          );
          inputs[1 - k] = name;
          moveBelow(inputs);
          return true;
        }
        const t2 = producer.get(other);
        if (
          t2 &&
          t2 !== t &&
          t2.opType === "Transpose" &&
          sameList(permOf(t2) ?? [], p) &&
          (consumers.get(other) ?? []).length === 1 &&
          !outputs.has(other)
        ) {
          inputs[1 - k] = t2.inputs[0];
          g.nodes = g.nodes.filter((n) => n !== t2);
          moveBelow(inputs);
          return true;
        }
        return false;
      }
      if (c.opType === "Concat") {
        const ts = c.inputs.map((x) => producer.get(x));
        const alike = ts.every(
          (n, i) =>
            n !== undefined &&
            n.opType === "Transpose" &&
            sameList(permOf(n) ?? [], p) &&
            (consumers.get(c.inputs[i]) ?? []).length === 1 &&
            !outputs.has(c.inputs[i]),
        );
        if (!alike) return false;
        const axis = Number(c.attrs.axis ?? 0);
        const ax = axis < 0 ? axis + p.length : axis;
        const others = new Set(ts.filter((n) => n !== t));
        g.nodes = g.nodes.filter((n) => !others.has(n));
        moveBelow(
          ts.map((n) => (n as OnnxNode).inputs[0]),
          { ...c.attrs, axis: p[ax] },
        );
        return true;
      }
      return false;
    });
    if (!changed) break;
  }
  return before - g.nodes.length;
}
