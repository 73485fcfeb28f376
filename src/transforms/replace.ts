import type { Module } from "../nn/module";
import { errors } from "../messages";

/** Puts `replacement` where the module at `path` is (a field or an array item) and disposes the old one. */
export function replaceChild(root: Module, path: string, replacement: Module): void {
  for (const [parentPath, parent] of root.namedModules()) {
    for (const [name, child] of parent.namedChildren()) {
      if ((parentPath === "" ? name : `${parentPath}.${name}`) !== path) continue;
      const [field, index] = name.split(".");
      const holder = parent as unknown as Record<string, unknown>;
      if (index === undefined) holder[field] = replacement;
      else (holder[field] as Module[])[Number(index)] = replacement;
      child.dispose();
      return;
    }
  }
  throw errors.unknownName(
    "replace",
    "module at",
    path,
    [...root.namedModules()].map(([p]) => p).filter((p) => p !== ""),
  );
}
