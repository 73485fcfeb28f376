/**
 * Runs cells with tslab's TypeScript converter and executor, and turns what tslab reports through
 * its console interface into structured outcomes: the last expression's value (for a rich
 * execute_result), compile diagnostics and runtime errors (for ename / evalue / traceback).
 */
import type { ConverterSet, Executor } from "tslab/dist/executor";
import type { Converter, CompletionInfo } from "tslab/dist/converter";

const { createConverter, isCompleteCode } = require("tslab/dist/converter") as typeof import("tslab/dist/converter");
const { createExecutor } = require("tslab/dist/executor") as typeof import("tslab/dist/executor");
const { printQuickInfo } = require("tslab/dist/inspect") as { printQuickInfo(info: unknown): string };
const ts = require("@tslab/typescript-for-tslab") as typeof import("typescript");

export type Outcome =
  | { ok: true; hasValue: boolean; value?: unknown }
  | { ok: false; ename: string; evalue: string; traceback: string[] };

/** Stack frames of the kernel, tslab and Node internals say nothing about the user's cell. */
function cleanStack(stack: string, ename: string): string[] {
  const lines = stack.split("\n");
  // vm errors come decorated with the offending source line and a caret first: start at "<name>: ..."
  const head = lines.findIndex((l) => l.startsWith(`${ename}:`) || l === ename);
  return lines
    .slice(Math.max(head, 0))
    .filter((l) => !/node:internal|node:vm|node_modules[\\/]tslab[\\/]|[\\/]dist[\\/]kernel[\\/]|^\s+at (new Promise|Generator\.next|Script\.runInThisContext)/.test(l));
}

export function describeError(e: unknown): { ename: string; evalue: string; traceback: string[] } {
  if (e instanceof Error) {
    const ename = e.name || e.constructor?.name || "Error";
    const evalue = e.message;
    const frames = cleanStack(e.stack ?? `${ename}: ${evalue}`, ename);
    // the first stack line repeats "<name>: <message>"; keep it as the traceback's headline
    return { ename, evalue, traceback: frames.length > 0 ? frames : [`${ename}: ${evalue}`] };
  }
  const evalue = typeof e === "string" ? e : JSON.stringify(e) ?? String(e);
  return { ename: "Thrown", evalue, traceback: [`Thrown value: ${evalue}`] };
}

/**
 * `{ data }` → `{ data: data }`. tslab rewrites references to earlier cells' variables but misses
 * shorthand properties, so `{ data }` would fail with "data is not defined"; the long form is the
 * same program.
 */
export function expandShorthand(code: string): string {
  const src = ts.createSourceFile("cell.ts", code, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const ends: { at: number; name: string }[] = [];
  const visit = (node: import("typescript").Node): void => {
    if (ts.isShorthandPropertyAssignment(node)) ends.push({ at: node.name.getEnd(), name: node.name.text });
    ts.forEachChild(node, visit);
  };
  visit(src);
  let out = code;
  for (const e of ends.sort((a, b) => b.at - a.at)) out = `${out.slice(0, e.at)}: ${e.name}${out.slice(e.at)}`;
  return out;
}

export class Session {
  private readonly executor: Executor;
  private readonly converters: ConverterSet;
  private value: { set: boolean; v?: unknown } = { set: false };
  private diagnostics: string[] = [];
  private runtimeError: { e: unknown } | null = null;

  constructor(rootDir: string) {
    let node: Converter | null = null;
    this.converters = {
      get node() {
        node ??= createConverter({ isJS: false, isBrowser: false });
        return node;
      },
      get browser(): Converter {
        throw new Error("browser mode (%browser cells) is not supported by the quantbook kernel");
      },
      close: () => node?.close(),
    };
    this.executor = createExecutor(rootDir, this.converters, {
      log: (v: unknown) => {
        this.value = { set: true, v };
      },
      error: (first: unknown, ...rest: unknown[]) => {
        if (first === "%s%d:%d - %s" && rest.length === 4) {
          const [file, line, col, msg] = rest as [string, number, number, string];
          this.diagnostics.push(`${file}${line}:${col} - ${msg}`);
        } else if (this.runtimeError === null) {
          this.runtimeError = { e: first };
        }
      },
    });
  }

  /** Compiles the converter now (it is created lazily), so the first cell is fast. */
  warmUp(): void {
    void this.converters.node;
  }

  async execute(code: string): Promise<Outcome> {
    this.value = { set: false };
    this.diagnostics = [];
    this.runtimeError = null;
    const ok = await this.executor.execute(expandShorthand(code));
    if (this.diagnostics.length > 0) {
      return { ok: false, ename: "TypeScriptError", evalue: this.diagnostics.join("; "), traceback: ["The cell did not compile:", ...this.diagnostics] };
    }
    const err = this.runtimeError as { e: unknown } | null; // set by the console callbacks
    if (err !== null) return { ok: false, ...describeError(err.e) };
    if (!ok) return { ok: false, ename: "Error", evalue: "the cell failed", traceback: ["The cell failed without an error message"] };
    return this.value.set ? { ok: true, hasValue: true, value: this.value.v } : { ok: true, hasValue: false };
  }

  interrupt(): void {
    this.executor.interrupt();
  }

  complete(code: string, pos: number): CompletionInfo {
    return this.executor.complete(code, pos);
  }

  inspect(code: string, pos: number): string | null {
    const info = this.executor.inspect(code, pos);
    return info ? printQuickInfo(info) : null;
  }

  /** "complete", "incomplete" (with an indent) or "invalid" (a syntax error that more lines cannot fix). */
  isComplete(code: string): { status: "complete" | "incomplete" | "invalid"; indent?: string } {
    const r = isCompleteCode(code);
    if (!r.completed) return { status: "incomplete", indent: r.indent ?? "" };
    const src = ts.createSourceFile("cell.ts", code, ts.ScriptTarget.Latest, false, ts.ScriptKind.TS) as unknown as { parseDiagnostics?: unknown[] };
    return (src.parseDiagnostics?.length ?? 0) > 0 ? { status: "invalid" } : { status: "complete" };
  }

  close(): void {
    this.executor.close();
  }
}
