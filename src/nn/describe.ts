/** A module as text: its tree of submodules with parameter and quantized-op counts. */
import type { Module } from "./module";

/** A model's module tree: each module with its class, parameter count and (prepared models) op count. */
export function moduleTree(m: Module): string {
  const modules = m.namedModules();
  const params = m.namedParameters();
  // the model says what it has run through the quantization runtime (display never reaches into it)
  const prepared = m.preparedOpCounts();
  const ops = prepared ?? new Map<string, number>();
  const opTotal = [...ops.values()].reduce((a, b) => a + b, 0);
  const total = params.reduce((a, [, p]) => a + p.size, 0);
  const lines = modules.slice(0, 200).map(([path, mod]) => {
    const depth = path === "" ? 0 : path.split(".").length;
    const own = params.filter(([n]) => n.slice(0, n.lastIndexOf(".")) === path || (path === "" && !n.includes(".")));
    const count = own.reduce((a, [, p]) => a + p.size, 0);
    const opCount = ops.get(path);
    return `${"  ".repeat(depth)}${path === "" ? "(root)" : path.split(".").pop()}: ${mod.constructor.name}${count ? `, ${count} parameters` : ""}${opCount ? `, ${opCount} op${opCount === 1 ? "" : "s"}` : ""}`;
  });
  const more = modules.length > 200 ? `\n… ${modules.length - 200} more modules` : "";
  return `${m.constructor.name}: ${modules.length} modules, ${params.length} parameter tensors (${total} values)${prepared ? `, ${opTotal} quantized ops (prepared)` : ""}\n${lines.join("\n")}${more}`;
}
