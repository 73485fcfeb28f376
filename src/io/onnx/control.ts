/**
 * Control flow at import. A graph's `If` whose condition is known at load time — computed from
 * constants and shapes, or from inputs the user fixes with `{ constantInputs: { sr: 16000 } }` —
 * is replaced by the branch it takes (the chip runs one static graph, and so does quantbook).
 * An `If` that still depends on a model input is refused with the inputs to fix, and the
 * unsupported-op check looks inside every branch, so one error lists everything to change.
 */
import { errors } from "../../messages";
import { isSubgraph, type ConstValue, type OnnxGraph, type OnnxNode, type OnnxSubgraph } from "./proto";

/** What a user may fix an input to: a number, a list of numbers (flat), or a boolean. */
export type ConstantInput = number | boolean | number[];

/** Turns the named graph inputs into constants (they are no longer inputs of the loaded model). */
export function fixInputs(g: OnnxGraph, constants: Record<string, ConstantInput> | undefined): void {
  if (constants === undefined) return;
  for (const [name, value] of Object.entries(constants)) {
    const k = g.inputs.findIndex((i) => i.name === name);
    if (k < 0) {
      throw errors.invalidArgument(
        `loadOnnx (${g.file}): constantInputs`,
        `'${name}' is not an input of the graph`,
        `the inputs are ${g.inputs.map((i) => i.name).join(", ") || "(none)"}`,
      );
    }
    const input = g.inputs[k];
    const values = Array.isArray(value) ? value : [typeof value === "boolean" ? Number(value) : value];
    if (values.some((v) => typeof v !== "number" || Number.isNaN(v))) {
      throw errors.invalidArgument(
        `loadOnnx (${g.file}): constantInputs.${name}`,
        `${JSON.stringify(value)} is not a number, a list of numbers or a boolean`,
        "pass e.g. { sr: 16000 }",
      );
    }
    const dims =
      input.dims.every((d) => typeof d === "number" && d >= 0) &&
      (input.dims as number[]).reduce((a, b) => a * b, 1) === values.length
        ? (input.dims as number[])
        : values.length === 1 && !Array.isArray(value)
          ? []
          : [values.length];
    const dtype = input.dtype ?? "float32";
    const data =
      dtype === "float32"
        ? Float32Array.from(values)
        : dtype === "bool"
          ? Uint8Array.from(values.map((v) => (v ? 1 : 0)))
          : Int32Array.from(values);
    g.initializers.set(name, { data, dims, dtype });
    g.inputs.splice(k, 1);
  }
}

/** The graph inputs a value depends on (through its producers). */
export function inputsBehind(g: OnnxGraph, value: string): string[] {
  const producer = new Map<string, OnnxNode>();
  for (const n of g.nodes) for (const o of n.outputs) producer.set(o, n);
  const inputs = new Set(g.inputs.map((i) => i.name));
  const found = new Set<string>();
  const seen = new Set<string>();
  const walk = (v: string) => {
    if (v === "" || seen.has(v)) return;
    seen.add(v);
    if (inputs.has(v)) found.add(v);
    producer.get(v)?.inputs.forEach(walk);
  };
  walk(value);
  return [...found];
}

/**
 * Replaces every `If` whose condition `valueOf` knows by the branch it takes (repeatedly: a
 * branch may hold another If). `evaluator` makes a constant evaluator for the graph as it is now.
 * Returns how many Ifs were folded.
 */
export function foldIfs(g: OnnxGraph, evaluator: (g: OnnxGraph) => (name: string) => ConstValue | null): number {
  let folded = 0;
  for (let guard = 0; guard < 1000; guard++) {
    const ifs = g.nodes.filter((n) => n.opType === "If" && (n.domain === "" || n.domain === "ai.onnx"));
    if (ifs.length === 0) break;
    const valueOf = evaluator(g);
    const node = ifs.find((n) => valueOf(n.inputs[0]) !== null);
    if (node === undefined) break;
    const cond = valueOf(node.inputs[0]) as ConstValue;
    const branch = node.attrs[cond.data[0] ? "then_branch" : "else_branch"];
    if (!isSubgraph(branch)) {
      throw errors.badFile(
        "loadOnnx",
        g.file,
        `If ${node.name} has no ${cond.data[0] ? "then_branch" : "else_branch"} graph`,
      );
    }
    inline(g, node, branch);
    folded++;
  }
  return folded;
}

/** Puts a branch's nodes where the If was; its outputs become the If's through Identity nodes. */
function inline(g: OnnxGraph, node: OnnxNode, branch: OnnxSubgraph): void {
  if (branch.outputs.length !== node.outputs.length) {
    throw errors.badFile(
      "loadOnnx",
      g.file,
      `If ${node.name} has ${node.outputs.length} outputs but its branch returns ${branch.outputs.length}`,
    );
  }
  for (const [k, v] of branch.initializers) g.initializers.set(k, v);
  const tail = node.outputs.flatMap((out, k) =>
    out === ""
      ? []
      : [
          {
            name: `${node.name}/out${k}`,
            opType: "Identity",
            domain: "",
            inputs: [branch.outputs[k]],
            outputs: [out],
            attrs: {},
          },
        ],
  );
  const at = g.nodes.indexOf(node);
  g.nodes.splice(at, 1, ...branch.nodes, ...tail);
}

/** Every unsupported op type, inside branches too; an If still in the graph says which inputs to fix. */
export function unsupportedOps(g: OnnxGraph, known: Set<string>): Map<string, string[]> {
  const bad = new Map<string, string[]>();
  const add = (type: string, name: string) => bad.set(type, [...(bad.get(type) ?? []), name]);
  const visit = (nodes: OnnxNode[], where: string) => {
    for (const n of nodes) {
      const name = where === "" ? n.name : `${where}/${n.name}`;
      if (n.domain !== "" && n.domain !== "ai.onnx") add(`${n.domain}.${n.opType}`, name);
      else if (n.opType === "If" && where === "") {
        const inputs = inputsBehind(g, n.inputs[0]);
        add(
          `If (its condition depends on input${inputs.length === 1 ? "" : "s"} ${inputs.join(", ")}: fix with { constantInputs: { ${inputs.map((i) => `${i}: …`).join(", ")} } })`,
          name,
        );
      } else if (!known.has(n.opType)) add(n.opType, name);
      for (const v of Object.values(n.attrs)) if (isSubgraph(v)) visit(v.nodes, name);
    }
  };
  visit(g.nodes, "");
  return bad;
}
