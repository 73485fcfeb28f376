import { execFileSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { install } from "../kernel/main";

export const PYTHON = "/usr/bin/python3";

/** Why Jupyter's Python side is missing, or null when it is there. */
export function jupyterMissing(modules: string[]): string | null {
  try {
    execFileSync(PYTHON, ["-c", `import ${modules.join(", ")}`], { stdio: "ignore" });
    return null;
  } catch {
    return `${PYTHON} cannot import ${modules.join(", ")} (apt-get install jupyter-nbconvert python3-nbclient python3-jupyter-kernel-test)`;
  }
}

/** A JUPYTER_PATH holding only the quantbook kernelspec of this checkout. */
export function kernelspecDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), "qb-jupyter-"));
  install({ prefix: dir });
  return path.join(dir, "share", "jupyter");
}
