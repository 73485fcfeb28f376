/**
 * What `prepare` found worth a look, in the spirit of the reference toolchain's
 * model_check_result.txt: float data entering ops without a QuantStub, modules used twice,
 * modules never called, ops left unquantized.
 */
import type { Module } from "../nn/module";
import { FLOAT_CONSTANT, isModelInput, type Graph } from "./graph";
import type { PreparedOp } from "./quantRuntime";

export interface CheckReport {
  floatInputs: { op: string; input: number; source: string }[];
  sharedModules: { paths: string[]; calls: number }[];
  unusedModules: string[];
  unquantizedOutputs: string[];
  /** Text as in model_check_result.txt. */
  text: string;
}

export function buildCheckReport(root: Module, graph: Graph, ops: Map<string, PreparedOp>): CheckReport {
  const floatInputs: CheckReport["floatInputs"] = [];
  for (const op of graph.ops) {
    if (op.type === "QuantStub") continue;
    op.inputs.forEach((inp, i) => {
      if (isModelInput(inp.source) || inp.source === FLOAT_CONSTANT) floatInputs.push({ op: op.name, input: i, source: inp.source });
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
    const own = op.name === op.modulePath || (op.name.startsWith(`${op.modulePath}_`) && /^\d+$/.test(op.name.slice(op.modulePath.length + 1)));
    if (own) ownCalls.set(op.modulePath, (ownCalls.get(op.modulePath) ?? 0) + 1);
  }
  const sharedModules = [...pathsOf.values()]
    .map((paths) => ({ paths, calls: ownCalls.get(paths[0]) ?? 0 }))
    .filter((s) => s.paths[0] !== "" && (s.paths.length > 1 || s.calls > 1));
  const used = new Set(graph.ops.map((o) => o.modulePath));
  const unusedModules = [...pathsOf.values()]
    .map((p) => p[0])
    .filter((p) => p !== "" && ![...used].some((u) => u === p || u.startsWith(`${p}.`)));
  const unquantizedOutputs = [...ops.values()]
    .filter((o) => o.output === null && o.info.type !== "DeQuantStub" && o.qconfig.output !== null)
    .map((o) => o.info.name);

  const lines: string[] = [];
  const section = (title: string, rows: string[]) => {
    lines.push(`${title}:`, ...(rows.length ? rows.map((r) => `  ${r}`) : ["  (none)"]), "");
  };
  section("Float inputs not behind a QuantStub (quantize them with a QuantStub)", floatInputs.map((f) => `${f.op} input ${f.input} <- ${f.source}`));
  section("Shared modules (one module called in several places shares its weight and scales)", sharedModules.map((s) => `${s.paths.join(", ")} (${s.calls} calls)`));
  section("Unused modules (never called by forward)", unusedModules);
  section("Ops without a qconfig for their output (they stay float; add a qconfig setter)", unquantizedOutputs);
  return { floatInputs, sharedModules, unusedModules, unquantizedOutputs, text: lines.join("\n") };
}
