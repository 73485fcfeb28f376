/**
 * Runs cells: converts each with tslab's TypeScript converter (types checked against the
 * declarations of earlier cells), then runs the JavaScript in this process. Over tslab's own
 * executor it adds:
 *
 * - a failed cell keeps what it declared before the failing statement (values and types), as in
 *   ipykernel; names it did not reach keep their earlier value and type;
 * - runtime stack frames map to cell lines ("cell 4, line 8"): every statement carries a marker
 *   comment through the conversion;
 * - modules the notebook's folder does not have (quantbook, @tensorflow/tfjs, ...) load from the
 *   quantbook installation, while the folder's own packages win;
 * - a Promise as the last value is awaited (a rejected one fails the cell);
 * - each cell's code runs in an async context that names the cell, so output of work that outlives
 *   its cell can be told apart.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import Module from "node:module";
import * as path from "node:path";
import * as vm from "node:vm";
import { loadTslab, PACKAGE_ROOT, type CellConverter, type ConvertResult, type Diagnostic, type TS } from "./tslab";

/** The cell whose code (or whose background work) is running. */
export const cellContext = new AsyncLocalStorage<{ cell: number }>();

export type RunResult =
  | { kind: "ok"; hasValue: boolean; value?: unknown }
  | { kind: "compileError"; diagnostics: string[] }
  | { kind: "error"; error: unknown };

export class KeyboardInterrupt extends Error {
  constructor(what = "the cell") {
    super(`${what} was interrupted`);
    this.name = "KeyboardInterrupt";
  }
}

const FILE_PREFIX = "quantbook-cell-";
const MARKER = /\/\*@qb(\d+)\*\//;

/** A statement start marker per statement: `/*@qb<line>*\/`, and where each was put (to fix diagnostic columns). */
export function markStatements(
  ts: TS,
  code: string,
): { text: string; inserts: { line: number; col: number; len: number }[] } {
  const src = ts.createSourceFile("cell.ts", code, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const at: number[] = [];
  const visit = (node: import("typescript").Node): void => {
    const p = node.parent;
    if (
      p &&
      (ts.isSourceFile(p) ||
        ts.isBlock(p) ||
        ts.isModuleBlock(p) ||
        ts.isCaseClause(p) ||
        ts.isDefaultClause(p) ||
        ts.isClassLike(p))
    ) {
      at.push(node.getStart(src));
    }
    ts.forEachChild(node, visit);
  };
  visit(src);
  const positions = [...new Set(at)].sort((a, b) => a - b);
  const inserts: { line: number; col: number; len: number }[] = [];
  let out = "";
  let last = 0;
  for (const pos of positions) {
    const { line, character } = src.getLineAndCharacterOfPosition(pos);
    const mark = `/*@qb${line + 1}*/`;
    out += code.slice(last, pos) + mark;
    inserts.push({ line, col: character, len: mark.length });
    last = pos;
  }
  return { text: out + code.slice(last), inserts };
}

/** For each line of the wrapped script (1-based), the cell line it came from (0: unknown). */
function lineMapOf(js: string): number[] {
  const map = [0, 0];
  let cur = 0;
  for (const l of js.split("\n")) {
    const m = MARKER.exec(l);
    if (m) cur = Number(m[1]);
    map.push(cur);
  }
  return map;
}

/** Top-level names a cell declares (variables, functions, classes, enums, namespaces, imports). */
function declaredNames(ts: TS, code: string): Set<string> {
  const src = ts.createSourceFile("cell.ts", code, ts.ScriptTarget.Latest, false, ts.ScriptKind.TS);
  return new Set(src.statements.flatMap((s) => runtimeNames(ts, s)));
}

/** Runtime names a statement declares (none for interfaces and type aliases). */
function runtimeNames(ts: TS, s: import("typescript").Statement): string[] {
  if (ts.isInterfaceDeclaration(s) || ts.isTypeAliasDeclaration(s)) return [];
  const names: string[] = [];
  const bind = (n: import("typescript").BindingName): void => {
    if (ts.isIdentifier(n)) names.push(n.text);
    else for (const e of n.elements) if (!ts.isOmittedExpression(e)) bind(e.name);
  };
  if (ts.isVariableStatement(s)) s.declarationList.declarations.forEach((d) => bind(d.name));
  else if (
    (ts.isFunctionDeclaration(s) || ts.isClassDeclaration(s) || ts.isEnumDeclaration(s) || ts.isModuleDeclaration(s)) &&
    s.name &&
    ts.isIdentifier(s.name)
  ) {
    names.push(s.name.text);
  } else if (ts.isImportDeclaration(s) && s.importClause) {
    const c = s.importClause;
    if (c.name) names.push(c.name.text);
    if (c.namedBindings && ts.isNamespaceImport(c.namedBindings)) names.push(c.namedBindings.name.text);
    else if (c.namedBindings) c.namedBindings.elements.forEach((e) => names.push(e.name.text));
  } else if (ts.isImportEqualsDeclaration(s)) names.push(s.name.text);
  return names;
}

/**
 * The declarations to carry on after a cell failed: the cell's declarations of names it assigned
 * before failing; for names it declared but did not reach, the earlier declaration (if any).
 */
export function keepReached(
  ts: TS,
  prevDecl: string,
  newDecl: string,
  cellNames: Set<string>,
  written: Set<string>,
): string {
  const parse = (text: string) =>
    ts.createSourceFile("decl.d.ts", text, ts.ScriptTarget.Latest, false, ts.ScriptKind.TS);
  const next = parse(newDecl);
  const prev = parse(prevDecl);
  const kept: string[] = [];
  for (const s of next.statements) {
    const names = runtimeNames(ts, s);
    const ours = names.some((n) => cellNames.has(n));
    if (!ours || names.some((n) => written.has(n))) kept.push(newDecl.slice(s.pos, s.end).trim());
  }
  for (const s of prev.statements) {
    const names = runtimeNames(ts, s);
    if (names.length > 0 && names.every((n) => cellNames.has(n) && !written.has(n)))
      kept.push(prevDecl.slice(s.pos, s.end).trim());
  }
  return kept.join("\n") + "\n";
}

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return (
    v !== null &&
    (typeof v === "object" || typeof v === "function") &&
    typeof (v as { then?: unknown }).then === "function"
  );
}

export class Executor {
  private readonly tslab = loadTslab();
  private readonly converter: CellConverter;
  private prevDecl = "";
  /** Values of every top-level name of earlier cells. */
  private readonly locals: Record<string, unknown> = {};
  private readonly exports: Record<string, unknown>;
  private written: Set<string> | null = null;
  /** Set when a cell replaced an object held by a top-level name (memory may be reclaimable). */
  replacedObjects = false;
  private readonly require: (id: string) => unknown;
  private readonly sideOutputs = new Map<string, string>();
  private readonly sideModules = new Map<string, Module>();
  private readonly lineMaps = new Map<number, number[]>();
  private interruptReject: ((e: Error) => void) | null = null;

  constructor(rootDir: string) {
    this.converter = this.tslab.createConverter(rootDir);
    const locals = this.locals;
    const note = (prop: string | symbol, value: unknown) => {
      if (typeof prop !== "string") return;
      this.written?.add(prop);
      const old = locals[prop];
      if (old !== value && old !== null && typeof old === "object") this.replacedObjects = true;
    };
    this.exports = new Proxy(locals, {
      defineProperty: (_t, prop, attrs) => {
        if (prop === "__esModule") return true;
        const value = attrs.get ? attrs.get() : attrs.value;
        note(prop, value);
        (locals as Record<string | symbol, unknown>)[prop] = value;
        return true;
      },
      set: (_t, prop, value) => {
        note(prop, value);
        (locals as Record<string | symbol, unknown>)[prop] = value;
        return true;
      },
    });
    this.require = this.makeRequire(rootDir);
  }

  get ts(): TS {
    return this.tslab.ts;
  }

  /** `require` for cells: side outputs (local .ts modules), then the notebook's folder, then the quantbook installation. */
  private makeRequire(dir: string): (id: string) => unknown {
    const here = Module.createRequire(path.join(dir, "__cell__.js"));
    const installed = Module.createRequire(path.join(PACKAGE_ROOT, "__kernel__.js"));
    return (id: string): unknown => {
      if (id === "tslab") return require("tslab");
      const local = this.fromSideOutputs(dir, id);
      if (local !== undefined) return local;
      try {
        return here(id);
      } catch (e) {
        const bare = !id.startsWith(".") && !path.isAbsolute(id);
        if (
          !bare ||
          (e as { code?: string }).code !== "MODULE_NOT_FOUND" ||
          !String((e as Error).message).includes(`'${id}'`)
        )
          throw e;
        try {
          return installed(id === "quantbook" ? PACKAGE_ROOT : id);
        } catch {
          throw e;
        }
      }
    };
  }

  /** A .ts module next to the notebook, converted along with the cell that imports it. */
  private fromSideOutputs(dir: string, id: string): unknown {
    if (!id.startsWith(".")) return undefined;
    let file = path.join(dir, id);
    if (path.extname(file) === "") file += ".js";
    const cached = this.sideModules.get(file);
    if (cached) return cached.exports;
    const code = this.sideOutputs.get(file);
    if (code === undefined) return undefined;
    const mod = new Module(file, module);
    mod.filename = file;
    mod.paths = (Module as unknown as { _nodeModulePaths(d: string): string[] })._nodeModulePaths(path.dirname(file));
    const req = this.makeRequire(path.dirname(file));
    mod.require = Object.assign((id: string) => req(id), {
      resolve: mod.require.resolve,
      cache: mod.require.cache,
      main: undefined,
      extensions: mod.require.extensions,
    }) as NodeRequire;
    (mod as unknown as { _compile(code: string, file: string): void })._compile(code, file);
    this.sideModules.set(file, mod);
    return mod.exports;
  }

  private race<T>(p: PromiseLike<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.interruptReject = reject;
      p.then(resolve, reject);
    }).finally(() => {
      this.interruptReject = null;
    });
  }

  /** Stops waiting for the running cell's promise (its work may go on; see the README). */
  interrupt(): void {
    this.interruptReject?.(new KeyboardInterrupt());
  }

  async run(code: string, cell: number): Promise<RunResult> {
    const ts = this.tslab.ts;
    const marked = markStatements(ts, code);
    const conv: ConvertResult = this.converter.convert(this.prevDecl, marked.text);
    for (const o of conv.sideOutputs ?? []) {
      this.sideModules.delete(o.path);
      this.sideOutputs.set(o.path, o.data);
    }
    if (conv.diagnostics.length > 0)
      return {
        kind: "compileError",
        diagnostics: conv.diagnostics.map((d) => formatDiagnostic(d, marked.inserts, cell)),
      };
    if (!conv.output) {
      this.prevDecl = conv.declOutput ?? "";
      return { kind: "ok", hasValue: false };
    }
    // TypeScript's CommonJS emit first sets every exported name to undefined; dropped, so that a
    // name the cell does not reach keeps its earlier value
    const js = conv.output.replace(/^(exports\.[\w$]+ = )+void 0;\n/gm, "");
    this.lineMaps.set(cell, lineMapOf(js));
    const head = conv.hasToplevelAwait ? "(async function (exports, require) {" : "(function (exports, require) {";
    const src = `${head}\n${js}\n})(globalThis.__quantbook_cell__.exports, globalThis.__quantbook_cell__.require)`;
    (globalThis as Record<string, unknown>).__quantbook_cell__ = { exports: this.exports, require: this.require };
    const lastVar = conv.lastExpressionVar;
    this.written = new Set();
    try {
      const script = new vm.Script(src, { filename: `${FILE_PREFIX}${cell}` });
      const ret = cellContext.run({ cell }, () => script.runInThisContext({ breakOnSigint: true }));
      if (conv.hasToplevelAwait) await this.race(ret as Promise<unknown>);
      let value = lastVar !== undefined ? this.locals[lastVar] : undefined;
      if (isThenable(value)) value = await this.race(value);
      this.prevDecl = conv.declOutput ?? "";
      return value === undefined || value === null
        ? { kind: "ok", hasValue: false }
        : { kind: "ok", hasValue: true, value };
    } catch (e) {
      this.prevDecl = keepReached(ts, this.prevDecl, conv.declOutput ?? "", declaredNames(ts, code), this.written);
      const sigint = e instanceof Error && /Script execution was interrupted by `SIGINT`/.test(e.message);
      return { kind: "error", error: sigint ? new KeyboardInterrupt() : e };
    } finally {
      if (lastVar !== undefined) delete this.locals[lastVar];
      this.written = null;
    }
  }

  /** `file:line:col` of a cell frame as "cell N, line L", or null for other frames. */
  cellLocation(frame: string): string | null {
    const m = new RegExp(`${FILE_PREFIX}(\\d+):(\\d+)(?::\\d+)?`).exec(frame);
    if (!m) return null;
    const cell = Number(m[1]);
    const line = this.lineMaps.get(cell)?.[Number(m[2])] ?? 0;
    return line > 0 ? `cell ${cell}, line ${line}` : `cell ${cell}`;
  }

  complete(code: string, pos: number) {
    return this.converter.complete(this.prevDecl, code, pos);
  }

  inspect(code: string, pos: number): string | null {
    const info = this.converter.inspect(this.prevDecl, code, pos);
    return info ? this.tslab.printQuickInfo(info) : null;
  }

  isCompleteCode(code: string): { completed: boolean; indent?: string } {
    return this.tslab.isCompleteCode(code);
  }

  close(): void {
    this.converter.close();
  }
}

/** "cell 3, line 2:7 - message", with the column as the user typed it (markers removed). */
function formatDiagnostic(d: Diagnostic, inserts: { line: number; col: number; len: number }[], cell: number): string {
  if (d.fileName) return `${d.fileName} ${d.start.line + 1}:${d.start.character + 1} - ${d.messageText}`;
  let col = d.start.character;
  let shift = 0; // where each marker sits in the marked text
  for (const i of inserts) {
    if (i.line !== d.start.line) continue;
    if (d.start.character >= i.col + shift + i.len) col -= i.len;
    shift += i.len;
  }
  return `cell ${cell}, line ${d.start.line + 1}:${col + 1} - ${d.messageText}`;
}
