import type * as tf from "@tensorflow/tfjs";
import type { Module } from "./module";
import type { OpInterceptor } from "./runtime";

/** State of one root forward: module stack, op-name counters, module paths. */
export class ForwardContext {
  private readonly stack: Module[] = [];
  private readonly counters = new Map<string, number>();
  private readonly paths = new Map<Module, string>();
  /** The node of an imported graph being run now (its name and op type), set by the graph module around each node. */
  source: { node: string; opType: string } | null = null;

  constructor(
    readonly root: Module,
    readonly interceptor: OpInterceptor | null,
  ) {
    for (const [path, m] of root.namedModules()) if (!this.paths.has(m)) this.paths.set(m, path);
    this.stack.push(root);
  }

  top(): Module {
    return this.stack[this.stack.length - 1];
  }

  push(m: Module): void {
    this.stack.push(m);
  }

  pop(): void {
    this.stack.pop();
  }

  /** Path of the running module; a module outside the tree is named by its class. */
  modulePath(): string {
    const m = this.top();
    const known = this.paths.get(m);
    if (known !== undefined) return known;
    const parent = this.stack.length > 1 ? (this.paths.get(this.stack[this.stack.length - 2]) ?? "") : "";
    const anon = `<${m.constructor.name}>`;
    return parent === "" ? anon : `${parent}.${anon}`;
  }

  /**
   * Unique name of an op: `<module path>.<name>` (the module path itself for a module's own op,
   * e.g. a Linear), with `_1`, `_2` for repeated calls in one forward.
   */
  opName(name: string | null, fallback: string): string {
    const path = this.modulePath();
    const base = name === null ? (path === "" ? fallback : path) : path === "" ? name : `${path}.${name}`;
    const n = this.counters.get(base) ?? 0;
    this.counters.set(base, n + 1);
    return n === 0 ? base : `${base}_${n}`;
  }
}

let current: ForwardContext | null = null;

export function currentForward(): ForwardContext | null {
  return current;
}

export function setCurrentForward(f: ForwardContext | null): void {
  current = f;
}

/** Tells the running forward's interceptor that `t` is a constant of the model (see OpInterceptor.constant). */
export function declareConstant(t: tf.Tensor): void {
  current?.interceptor?.constant?.(t);
}
