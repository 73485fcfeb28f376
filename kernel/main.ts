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
import { errors } from "../src/messages";

export function kernelSpec(): Record<string, unknown> {
  return {
    // --expose-gc: the kernel collects garbage after a cell replaced a model, so its tensors are freed
    argv: [
      process.execPath,
      "--expose-gc",
      path.resolve(__dirname, "main.js"),
      "kernel",
      "--connection-file",
      "{connection_file}",
    ],
    display_name: "TypeScript (quantbook)",
    language: "typescript",
    // interrupts come as interrupt_request on the control channel, answered by a thread of their own
    interrupt_mode: "message",
    metadata: { debugger: false },
  };
}

/** Where `install` writes the kernelspec, by option (user: the Jupyter data dir). */
export function kernelDir(opts: { user?: boolean; sysPrefix?: boolean; prefix?: string | undefined }): string {
  if (opts.prefix) return path.join(opts.prefix, "share", "jupyter", "kernels", "quantbook");
  if (opts.sysPrefix) return path.join("/usr/local", "share", "jupyter", "kernels", "quantbook");
  const data =
    process.env.JUPYTER_DATA_DIR ??
    path.join(process.env.XDG_DATA_HOME ?? path.join(homedir(), ".local", "share"), "jupyter");
  return path.join(data, "kernels", "quantbook");
}

export function install(opts: { user?: boolean; sysPrefix?: boolean; prefix?: string | undefined }): string {
  const dir = kernelDir(opts);
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, "kernel.json"), JSON.stringify(kernelSpec(), null, 1));
  return dir;
}

const FATAL_EVENTS = {
  uncaughtException: "uncaught exception",
  unhandledRejection: "unhandled promise rejection",
} as const;
type FatalEvent = keyof typeof FATAL_EVENTS;
const wrapped = new WeakSet<object>();

/**
 * Makes errors no cell caught non-fatal: the process's uncaughtException / unhandledRejection
 * handlers become `report`, and handlers other code installs (the wasm backend's Emscripten glue
 * installs ones that re-throw, which would kill the kernel) run inside a try/catch.
 */
export function guardProcess(report: (e: unknown, kind: string) => void): void {
  for (const ev of Object.keys(FATAL_EVENTS) as FatalEvent[]) {
    process.removeAllListeners(ev);
    process.on(ev, (e: unknown) => report(e, FATAL_EVENTS[ev]));
  }
  const p = process as unknown as Record<string, unknown>;
  if (wrapped.has(p.on as object)) return;
  for (const method of ["on", "addListener", "prependListener", "once", "prependOnceListener"]) {
    const orig = (p[method] as (...a: unknown[]) => unknown).bind(process);
    const safe = (ev: string | symbol, fn: (...a: unknown[]) => unknown) => {
      if (!(ev in FATAL_EVENTS)) return orig(ev, fn);
      return orig(ev, (...a: unknown[]) => {
        try {
          fn(...a);
        } catch (thrown) {
          if (thrown !== a[0]) report(thrown, `error in a ${String(ev)} handler`);
        }
      });
    };
    wrapped.add(safe);
    p[method] = safe;
  }
}

function arg(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

export async function main(args: string[]): Promise<void> {
  const [command] = args;
  if (command === "install") {
    const dir = install({
      user: args.includes("--user"),
      sysPrefix: args.includes("--sys-prefix"),
      prefix: arg(args, "--prefix"),
    });
    console.log(`installed kernelspec "quantbook" (TypeScript (quantbook)) in ${dir}`);
    return;
  }
  if (command === "kernel") {
    const file = arg(args, "--connection-file");
    if (file === undefined)
      throw errors.kernel(
        "no --connection-file given",
        "Jupyter passes it through the kernelspec (install it with `quantbook install-kernel`)",
      );
    const conn = JSON.parse(readFileSync(file, "utf8")) as ConnectionInfo;
    const kernel = new Kernel(conn, process.cwd());
    process.on("SIGINT", () => kernel.interrupt());
    process.on("SIGTERM", () => kernel.shutdown());
    const report = (e: unknown, kind: string) => kernel.reportUncaught(e, kind);
    guardProcess(report);
    await kernel.start();
    guardProcess(report); // again: loading the wasm backend added its own (re-throwing) handlers
    return;
  }
  console.error(
    "usage: main.js kernel --connection-file FILE | main.js install [--user | --sys-prefix | --prefix DIR]",
  );
  process.exit(2);
}

if (require.main === module) {
  main(process.argv.slice(2)).catch((e) => {
    console.error(e instanceof Error ? e.message : e);
    process.exit(1);
  });
}
