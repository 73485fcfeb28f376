#!/usr/bin/env node
/**
 * `node dist/kernel/main.js kernel --connection-file <file>`: runs the quantbook kernel.
 * `node dist/kernel/main.js install [--user | --sys-prefix | --prefix DIR]`: installs the
 * kernelspec "quantbook" (display name "TypeScript (quantbook)"); no Python needed.
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import * as path from "node:path";
import { Kernel, type ConnectionInfo } from "./kernel";

export function kernelSpec(): Record<string, unknown> {
  return {
    argv: [process.execPath, path.resolve(__dirname, "main.js"), "kernel", "--connection-file", "{connection_file}"],
    display_name: "TypeScript (quantbook)",
    language: "typescript",
    interrupt_mode: "signal",
    metadata: { debugger: false },
  };
}

/** Where `install` writes the kernelspec, by option (user: the Jupyter data dir). */
export function kernelDir(opts: { user?: boolean; sysPrefix?: boolean; prefix?: string }): string {
  if (opts.prefix) return path.join(opts.prefix, "share", "jupyter", "kernels", "quantbook");
  if (opts.sysPrefix) return path.join("/usr/local", "share", "jupyter", "kernels", "quantbook");
  const data = process.env.JUPYTER_DATA_DIR ?? path.join(process.env.XDG_DATA_HOME ?? path.join(homedir(), ".local", "share"), "jupyter");
  return path.join(data, "kernels", "quantbook");
}

export function install(opts: { user?: boolean; sysPrefix?: boolean; prefix?: string }): string {
  const dir = kernelDir(opts);
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, "kernel.json"), JSON.stringify(kernelSpec(), null, 1));
  return dir;
}

function arg(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

async function main(args: string[]): Promise<void> {
  const [command] = args;
  if (command === "install") {
    const dir = install({ user: args.includes("--user"), sysPrefix: args.includes("--sys-prefix"), prefix: arg(args, "--prefix") });
    console.log(`installed kernelspec "quantbook" (TypeScript (quantbook)) in ${dir}`);
    return;
  }
  if (command === "kernel") {
    const file = arg(args, "--connection-file");
    if (file === undefined) throw new Error("kernel: pass --connection-file <file> (Jupyter does this through the kernelspec)");
    const conn = JSON.parse(readFileSync(file, "utf8")) as ConnectionInfo;
    const kernel = new Kernel(conn, process.cwd());
    process.on("SIGINT", () => kernel.interrupt());
    process.on("SIGTERM", () => kernel.shutdown());
    process.on("uncaughtException", (e) => process.stderr.write(`uncaught exception: ${e?.stack ?? e}\n`));
    process.on("unhandledRejection", (e) => process.stderr.write(`unhandled rejection: ${(e as Error)?.stack ?? e}\n`));
    await kernel.start();
    return;
  }
  console.error("usage: main.js kernel --connection-file FILE | main.js install [--user | --sys-prefix | --prefix DIR]");
  process.exit(2);
}

if (require.main === module) {
  main(process.argv.slice(2)).catch((e) => {
    console.error(e instanceof Error ? e.message : e);
    process.exit(1);
  });
}
