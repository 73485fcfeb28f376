/**
 * A kernel session: runs cells through the executor and turns what happens into structured
 * outcomes — the last expression's value (for a rich execute_result), compile diagnostics and
 * runtime errors (ename / evalue / a traceback whose frames name cell lines, user frames first).
 */
import type { CompletionInfo } from "./tslab";
import { Executor } from "./executor";
import { loadTslab } from "./tslab";

export type Outcome =
  { ok: true; hasValue: boolean; value?: unknown } | { ok: false; ename: string; evalue: string; traceback: string[] };

type Locate = (frame: string) => string | null;

/** Frames of the kernel, tslab and Node's internals say nothing about the user's code. */
const HIDDEN =
  /node:internal|node:vm|node:async_hooks|node_modules[\\/]tslab[\\/]|[\\/]dist[\\/]kernel[\\/]|^\s+at (new Promise|Generator\.next|Script\.runInThisContext|AsyncLocalStorage\.run)|^\s+at (async )?Promise\.(all|race)/;

/** Which library a frame is in, for the folded summary. */
function libraryOf(frame: string): string {
  const m = /node_modules[\\/]((?:@[^\\/]+[\\/])?[^\\/]+)/.exec(frame);
  if (m) return m[1].replace("\\", "/");
  if (/[\\/]dist[\\/]src[\\/]/.test(frame)) return "quantbook";
  return "node";
}

/**
 * A traceback for an error: the headline, then the user's frames (cell frames as "cell N, line L"),
 * then one line that folds the library frames (quantbook, tfjs, ...) by library.
 */
export function traceback(stack: string, ename: string, locate: Locate): string[] {
  const lines = stack.split("\n");
  // vm errors come decorated with the offending source line and a caret first: start at "<name>: ..."
  const head = Math.max(
    0,
    lines.findIndex((l) => l.startsWith(`${ename}:`) || l === ename),
  );
  const firstFrame = lines.findIndex((l, i) => i >= head && /^\s+at /.test(l));
  const headline = firstFrame < 0 ? lines.slice(head) : lines.slice(head, firstFrame);
  const frames = firstFrame < 0 ? [] : lines.slice(firstFrame).filter((l) => !HIDDEN.test(l));
  const user: string[] = [];
  const folded = new Map<string, number>();
  for (const f of frames) {
    const where = locate(f);
    if (where !== null) {
      // the cell's own wrapper function: no line of the user's
      if (!where.includes("line")) continue;
      const fn = /^\s+at (?:async )?(?:Proxy\.)?([^\s(]+) \(/.exec(f)?.[1];
      user.push(fn && fn !== "eval" && fn !== "<anonymous>" ? `    at ${fn} (${where})` : `    at ${where}`);
    } else {
      const lib = libraryOf(f);
      folded.set(lib, (folded.get(lib) ?? 0) + 1);
    }
  }
  const out = [...headline, ...user];
  if (folded.size > 0) {
    const n = [...folded.values()].reduce((a, b) => a + b, 0);
    out.push(
      `    (+ ${n} library frame${n === 1 ? "" : "s"}: ${[...folded].map(([k, v]) => `${k} ×${v}`).join(", ")})`,
    );
  }
  return out;
}

export function describeError(
  e: unknown,
  locate: Locate = () => null,
): { ename: string; evalue: string; traceback: string[] } {
  if (e instanceof Error) {
    const ename = e.name || e.constructor?.name || "Error";
    const evalue = e.message;
    const tb = traceback(e.stack ?? `${ename}: ${evalue}`, ename, locate);
    const cause = e.cause instanceof Error ? [`Caused by: ${e.cause.name}: ${e.cause.message}`] : [];
    return { ename, evalue, traceback: tb.length > 0 ? [...tb, ...cause] : [`${ename}: ${evalue}`] };
  }
  const evalue = typeof e === "string" ? e : (JSON.stringify(e) ?? String(e));
  return { ename: "Thrown", evalue, traceback: [`Thrown value: ${evalue}`] };
}

/**
 * `{ data }` → `{ data: data }`. tslab rewrites references to earlier cells' variables but misses
 * shorthand properties, so `{ data }` would fail with "data is not defined"; the long form is the
 * same program.
 */
export function expandShorthand(code: string): string {
  const ts = loadTslab().ts;
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
  readonly executor: Executor;

  constructor(rootDir: string) {
    this.executor = new Executor(rootDir);
  }

  /** Compiles a first cell now (the converter builds its program lazily), so the user's first cell is fast. */
  warmUp(): void {
    this.executor.complete("", 0);
  }

  async execute(code: string, cell: number): Promise<Outcome> {
    const r = await this.executor.run(expandShorthand(code), cell);
    if (r.kind === "compileError") {
      return {
        ok: false,
        ename: "TypeScriptError",
        evalue: r.diagnostics.join("; "),
        traceback: ["The cell did not compile:", ...r.diagnostics],
      };
    }
    if (r.kind === "error") return { ok: false, ...this.describe(r.error) };
    return r.hasValue ? { ok: true, hasValue: true, value: r.value } : { ok: true, hasValue: false };
  }

  /** An error as ename / evalue / traceback, its frames mapped to cell lines. */
  describe(e: unknown): { ename: string; evalue: string; traceback: string[] } {
    return describeError(e, (f) => this.executor.cellLocation(f));
  }

  interrupt(): void {
    this.executor.interrupt();
  }

  complete(code: string, pos: number): CompletionInfo {
    return this.executor.complete(code, pos);
  }

  inspect(code: string, pos: number): string | null {
    return this.executor.inspect(code, pos);
  }

  /** "complete", "incomplete" (with an indent) or "invalid" (a syntax error that more lines cannot fix). */
  isComplete(code: string): { status: "complete" | "incomplete" | "invalid"; indent?: string } {
    const r = this.executor.isCompleteCode(code);
    if (!r.completed) return { status: "incomplete", indent: r.indent ?? "" };
    const ts = this.executor.ts;
    const src = ts.createSourceFile("cell.ts", code, ts.ScriptTarget.Latest, false, ts.ScriptKind.TS) as unknown as {
      parseDiagnostics?: unknown[];
    };
    return (src.parseDiagnostics?.length ?? 0) > 0 ? { status: "invalid" } : { status: "complete" };
  }

  close(): void {
    this.executor.close();
  }
}
