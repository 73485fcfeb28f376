/**
 * The one place that knows tslab's internals. The kernel uses tslab's TypeScript converter (the
 * cell → JavaScript + declarations step), its completeness check and its quick-info printer, and
 * the TypeScript build tslab ships. None of these are tslab's public API, so `loadTslab()` checks
 * at start-up that each is there and fails with a message naming the tslab version if not.
 *
 * It also widens module resolution for the type checker: a package the notebook's folder does not
 * have is looked up in the quantbook installation, so `import * as qb from "quantbook"`
 * type-checks in any folder, while a package installed in the notebook's folder still wins.
 */
import * as path from "node:path";
import type { CompletionInfo, Converter } from "tslab/dist/converter";
import { errors } from "../src/messages";

export type { CompletionInfo, Converter };
export type TS = typeof import("typescript");

/** One compile diagnostic as tslab's converter reports it (positions relative to the cell). */
export interface Diagnostic {
  start: { offset: number; line: number; character: number };
  messageText: string;
  fileName?: string;
}

export interface ConvertResult {
  output?: string;
  declOutput?: string;
  diagnostics: Diagnostic[];
  hasToplevelAwait?: boolean;
  lastExpressionVar?: string;
  sideOutputs?: { path: string; data: string }[];
}

/** What the kernel uses of tslab's converter. */
export interface CellConverter {
  convert(prevDecl: string, src: string): ConvertResult;
  inspect(prevDecl: string, src: string, position: number): unknown;
  complete(prevDecl: string, src: string, position: number): CompletionInfo;
  close(): void;
}

export interface Tslab {
  version: string;
  ts: TS;
  createConverter(cwd: string): CellConverter;
  isCompleteCode(code: string): { completed: boolean; indent?: string };
  printQuickInfo(info: unknown): string;
}

/** The quantbook package root (dist/kernel/tslab.js → ../..). */
export const PACKAGE_ROOT = path.resolve(__dirname, "..", "..");

function need<T>(mod: Record<string, unknown>, name: string, where: string, version: string): T {
  const v = mod[name];
  if (typeof v !== "function") {
    throw errors.kernel(
      `it needs ${where}.${name} from tslab, which tslab ${version} does not have`,
      "quantbook is built against tslab 1.0.22: reinstall it with `npm install tslab@1.0.22`",
    );
  }
  return v as T;
}

let loaded: Tslab | null = null;

/** Loads and checks tslab's internals once; throws a clear error when one is missing. */
export function loadTslab(): Tslab {
  if (loaded) return loaded;
  let version = "(unknown version)";
  try {
    version = (require("tslab/package.json") as { version: string }).version;
  } catch {
    throw errors.missingPackage("the quantbook kernel", "tslab 1.0.22", "npm install tslab@1.0.22");
  }
  const req = (id: string): Record<string, unknown> => {
    try {
      return require(id) as Record<string, unknown>;
    } catch (e) {
      throw errors.kernel(
        `it could not load ${id} from tslab ${version}: ${(e as Error).message}`,
        "quantbook is built against tslab 1.0.22: reinstall it with `npm install tslab@1.0.22`",
      );
    }
  };
  const converter = req("tslab/dist/converter");
  const inspect = req("tslab/dist/inspect");
  const ts = req("@tslab/typescript-for-tslab") as unknown as TS;
  const createConverter = need<(o: object) => Converter>(converter, "createConverter", "dist/converter", version);
  const isCompleteCode = need<Tslab["isCompleteCode"]>(converter, "isCompleteCode", "dist/converter", version);
  const printQuickInfo = need<Tslab["printQuickInfo"]>(inspect, "printQuickInfo", "dist/inspect", version);
  need(ts as unknown as Record<string, unknown>, "createSourceFile", "@tslab/typescript-for-tslab", version);
  loaded = {
    version,
    ts,
    createConverter: (cwd: string) =>
      withFallbackResolution(
        ts,
        cwd,
        () => createConverter({ isJS: false, isBrowser: false }) as unknown as CellConverter,
      ),
    isCompleteCode,
    printQuickInfo,
  };
  return loaded;
}

/**
 * Makes `<cwd>/node_modules/<pkg>` answer, for the type checker, with the quantbook installation's
 * copy of `<pkg>` when the folder has none of its own (`quantbook` itself maps to the package
 * root). `realpath` points the checker at the real files, so their own imports resolve from the
 * installation. Only `ts.sys` is patched: tslab's watch host reads the file system through it.
 */
function withFallbackResolution<T>(ts: TS, cwd: string, create: () => T): T {
  const sys = ts.sys as unknown as Record<string, (...a: string[]) => unknown>;
  const orig = {
    fileExists: sys.fileExists,
    directoryExists: sys.directoryExists,
    readFile: sys.readFile,
    realpath: sys.realpath,
  };
  const vroot = path.join(cwd, "node_modules");
  const mapped = (p: string): string | null => {
    if (!p.startsWith(vroot + "/")) return null;
    const segs = p.slice(vroot.length + 1).split("/");
    const n = segs[0].startsWith("@") ? 2 : 1;
    if (segs.length < n) return null;
    const pkg = segs.slice(0, n).join("/");
    if (orig.directoryExists.call(ts.sys, path.join(vroot, pkg))) return null; // the folder's own package wins
    const base = pkg === "quantbook" ? PACKAGE_ROOT : path.join(PACKAGE_ROOT, "node_modules", pkg);
    return path.join(base, ...segs.slice(n));
  };
  const via = (fn: (...a: string[]) => unknown) =>
    function (this: unknown, p: string, ...rest: string[]) {
      const hit = fn.call(ts.sys, p, ...rest);
      if (hit) return hit;
      const m = mapped(p);
      return m === null ? hit : fn.call(ts.sys, m, ...rest);
    };
  sys.fileExists = via(orig.fileExists);
  sys.readFile = via(orig.readFile);
  sys.directoryExists = function (p: string) {
    return p === vroot || (via(orig.directoryExists) as (p: string) => unknown)(p);
  };
  if (orig.realpath) {
    sys.realpath = function (p: string) {
      const m = orig.fileExists.call(ts.sys, p) || orig.directoryExists.call(ts.sys, p) ? null : mapped(p);
      return orig.realpath.call(ts.sys, m ?? p);
    };
  }
  return create();
}
