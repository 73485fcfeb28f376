/**
 * What `prepare` found worth a look, in the spirit of the reference toolchain's
 * model_check_result.txt: float data entering ops without a QuantStub, modules used twice,
 * modules never called, ops left unquantized.
 */
import { DISPLAY, textBundle, type MimeBundle } from "../util/display";
import type { Module } from "../nn/module";
import { findOp } from "../ops";
import { FLOAT_CONSTANT, isModelInput, type Graph } from "./graph";
import type { PreparedOp } from "./quantRuntime";

export interface CheckReport {
  floatInputs: { op: string; input: number; source: string }[];
  /** Float inputs made by a raw tf op inside forward (they cut the traced graph). */
  untracedInputs: { op: string; input: number }[];
  sharedModules: { paths: string[]; calls: number }[];
  unusedModules: string[];
  unquantizedOutputs: string[];
  /** One line: how many findings of each kind. */
  caption: string;
  /** Text as in model_check_result.txt. */
  text: string;
  /** Its notebook display (the display protocol): the caption and the text. */
  [DISPLAY](): MimeBundle;
}

export function buildCheckReport(root: Module, graph: Graph, ops: Map<string, PreparedOp>): CheckReport {
  const floatInputs: CheckReport["floatInputs"] = [];
  const untracedInputs: CheckReport["untracedInputs"] = [];
  for (const op of graph.ops) {
    if (op.type === "QuantStub") continue;
    op.inputs.forEach((inp, i) => {
      if (isModelInput(inp.source) || inp.source === FLOAT_CONSTANT)
        floatInputs.push({ op: op.name, input: i, source: inp.source });
      if (inp.untraced) untracedInputs.push({ op: op.name, input: i });
    });
  }
  const pathsOf = new Map<Module, string[]>();
  const walk = (m: Module, path: string, stack: Set<Module>) => {
    pathsOf.set(m, [...(pathsOf.get(m) ?? []), path]);
    if (stack.has(m)) return;
    stack.add(m);
    for (const [name, child] of m.namedChildren()) walk(child, path === "" ? name : `${path}.${name}`, stack);
    stack.delete(m);
  };
  walk(root, "", new Set());
  // a module's own op (a Linear's, a stub's) is named after its path: "fc", then "fc_1", "fc_2" on later calls
  const ownCalls = new Map<string, number>();
  for (const op of graph.ops) {
    const own =
      op.name === op.modulePath ||
      (op.name.startsWith(`${op.modulePath}_`) && /^\d+$/.test(op.name.slice(op.modulePath.length + 1)));
    if (own) ownCalls.set(op.modulePath, (ownCalls.get(op.modulePath) ?? 0) + 1);
  }
  const sharedModules = [...pathsOf.values()]
    .map((paths) => ({ paths, calls: ownCalls.get(paths[0]) ?? 0 }))
    .filter((s) => s.paths[0] !== "" && (s.paths.length > 1 || s.calls > 1))
    // a module without fake-quantizers of its own (a ReLU, which keeps its input's scale) shares nothing
    .filter((s) =>
      [...ops.values()].some(
        (o) =>
          o.info.modulePath === s.paths[0] &&
          (o.output !== null || o.weight !== null || o.inputs.some((i) => i !== null)),
      ),
    );
  const used = new Set(graph.ops.map((o) => o.modulePath));
  const unusedModules = [...pathsOf.values()]
    .map((p) => p[0])
    .filter((p) => p !== "" && ![...used].some((u) => u === p || u.startsWith(`${p}.`)));
  const unquantizedOutputs = [...ops.values()]
    .filter(
      (o) =>
        o.output === null &&
        o.info.type !== "DeQuantStub" &&
        o.qconfig.output !== null &&
        findOp(o.info.type)?.role !== "passthrough",
    )
    .map((o) => o.info.name);

  const lines: string[] = [];
  const section = (title: string, rows: string[]) => {
    lines.push(`${title}:`, ...(rows.length ? rows.map((r) => `  ${r}`) : ["  (none)"]), "");
  };
  section(
    "Float inputs not behind a QuantStub (quantize them with a QuantStub)",
    floatInputs.map((f) => `${f.op} input ${f.input} <- ${f.source}`),
  );
  section(
    "Inputs made by a raw tf op inside forward (use the qb.F / qb.nn equivalent so the graph stays connected)",
    untracedInputs.map((u) => `${u.op} input ${u.input}`),
  );
  section(
    "Shared modules (one module called in several places shares its weight and scales)",
    sharedModules.map((s) => `${s.paths.join(", ")} (${s.calls} calls)`),
  );
  section("Unused modules (never called by forward)", unusedModules);
  section("Ops without a qconfig for their output (they stay float; add a qconfig setter)", unquantizedOutputs);
  const counts = [
    [floatInputs.length, "float input"],
    [untracedInputs.length, "untraced input"],
    [sharedModules.length, "shared module"],
    [unusedModules.length, "unused module"],
    [unquantizedOutputs.length, "op without output qconfig"],
  ] as const;
  const found = counts.filter(([n]) => n > 0).map(([n, what]) => `${n} ${what}${n === 1 ? "" : "s"}`);
  const caption = `Model check of ${graph.ops.length} ops: ${found.length === 0 ? "nothing to report" : found.join(", ")}`;
  return {
    floatInputs,
    untracedInputs,
    sharedModules,
    unusedModules,
    unquantizedOutputs,
    caption,
    text: lines.join("\n"),
    [DISPLAY]() {
      return textBundle(this.caption, this.text);
    },
  };
}
