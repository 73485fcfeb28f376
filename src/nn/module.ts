/**
 * `Module`: models are written as in PyTorch. Children are fields (their names make the module
 * paths), parameters are `tf.Variable` fields (named `linear1.weight`), plain tensor fields are
 * constants outside the state dict. A child is called as `this.child.forward(x)`; the library
 * tracks which module is running without help from user code.
 *
 * ```ts
 * class Tiny extends qb.nn.Module {
 *   quant = new qb.nn.QuantStub();
 *   fc = new qb.nn.Linear(4, 2);
 *   dequant = new qb.nn.DeQuantStub();
 *   forward(x: tf.Tensor) { return this.dequant.forward(this.fc.forward(this.quant.forward(x))); }
 * }
 * ```
 */
import * as tf from "@tensorflow/tfjs";
import { disposeWithOwner } from "./ownership";
import { INTERCEPTOR, type OpInterceptor } from "./runtime";
import { ForwardContext, currentForward, setCurrentForward } from "./forwardContext";
import { errors } from "../messages";
import { DISPLAY, type MimeBundle } from "../util/display";
import { moduleTree } from "./describe";

export interface LoadResult {
  missingKeys: string[];
  unexpectedKeys: string[];
}

const WRAPPED = Symbol("quantbook.forwardWrapped");

function wrapForward(proto: object): void {
  for (let p: object | null = proto; p !== null && p !== Object.prototype; p = Object.getPrototypeOf(p)) {
    if (!Object.prototype.hasOwnProperty.call(p, "forward")) continue;
    const desc = Object.getOwnPropertyDescriptor(p, "forward");
    const original = desc?.value as ((...args: unknown[]) => unknown) | undefined;
    if (typeof original !== "function" || (original as unknown as Record<symbol, boolean>)[WRAPPED]) continue;
    const wrapped = function (this: Module, ...args: unknown[]): unknown {
      const fwd = currentForward();
      if (fwd === null) return runRoot(this, original, args);
      if (fwd.top() === this) return original.apply(this, args); // super.forward(...)
      fwd.push(this);
      try {
        return original.apply(this, args);
      } finally {
        fwd.pop();
      }
    };
    (wrapped as unknown as Record<symbol, boolean>)[WRAPPED] = true;
    Object.defineProperty(p, "forward", { ...desc, value: wrapped });
  }
}

function runRoot(root: Module, original: (...args: unknown[]) => unknown, args: unknown[]): unknown {
  const interceptor = (root as unknown as Record<symbol, OpInterceptor | undefined>)[INTERCEPTOR] ?? null;
  return tf.tidy(() => {
    const fwd = new ForwardContext(root, interceptor);
    setCurrentForward(fwd);
    try {
      interceptor?.begin(args, root);
      const out = original.apply(root, args);
      interceptor?.end(out);
      return out as tf.TensorContainer;
    } finally {
      setCurrentForward(null);
    }
  });
}

export abstract class Module {
  /** Training mode (train()) or inference mode (eval()). */
  training = true;

  constructor() {
    wrapForward(new.target.prototype);
  }

  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- subclasses narrow the signature
  abstract forward(...args: any[]): any;

  /** Direct child modules by field name; arrays of modules give `field.0`, `field.1`, ... */
  namedChildren(): [string, Module][] {
    const out: [string, Module][] = [];
    for (const [key, value] of Object.entries(this)) {
      if (value instanceof Module) out.push([key, value]);
      else if (Array.isArray(value)) {
        value.forEach((v, i) => {
          if (v instanceof Module) out.push([`${key}.${i}`, v]);
        });
      }
    }
    return out;
  }

  /** Every module below and including this one, with its path ("" for this one). */
  namedModules(prefix = ""): [string, Module][] {
    const out: [string, Module][] = [[prefix, this]];
    for (const [name, child] of this.namedChildren()) {
      out.push(...child.namedModules(prefix === "" ? name : `${prefix}.${name}`));
    }
    return out;
  }

  /** Quantized ops per module path when this model is prepared (null when it is not): a display asks the model, not its runtime. */
  preparedOpCounts(): Map<string, number> | null {
    const rt = (this as unknown as Record<symbol, OpInterceptor | undefined>)[INTERCEPTOR];
    return rt?.opsPerModule?.() ?? null;
  }

  /** Its notebook display (the display protocol): the module tree with parameter and op counts. */
  [DISPLAY](): MimeBundle {
    return { "text/plain": moduleTree(this) };
  }

  /** Parameters and buffers (tf.Variable fields; buffers are not trainable) by dotted name. */
  namedParameters(): [string, tf.Variable][] {
    const out: [string, tf.Variable][] = [];
    for (const [path, m] of this.namedModules()) {
      for (const [key, value] of Object.entries(m)) {
        if (value instanceof tf.Variable) out.push([path === "" ? key : `${path}.${key}`, value]);
      }
    }
    return out;
  }

  parameters(): tf.Variable[] {
    return this.namedParameters().map(([, v]) => v);
  }

  /** Copies of the parameters, by name. The caller owns (and disposes) them. */
  stateDict(): Record<string, tf.Tensor> {
    const out: Record<string, tf.Tensor> = {};
    for (const [name, v] of this.namedParameters()) out[name] = tf.clone(v);
    return out;
  }

  /**
   * Loads parameters by name. Shapes must match (always an error otherwise). With `strict`
   * (the default), missing or unexpected keys are an error too. Either everything loads or
   * nothing changes.
   */
  loadStateDict(stateDict: Record<string, unknown>, opts: { strict?: boolean } = {}): LoadResult {
    const strict = opts.strict ?? true;
    if (stateDict === null || typeof stateDict !== "object") {
      throw errors.invalidArgument(
        "loadStateDict",
        `expected an object of named tensors, got ${stateDict === null ? "null" : typeof stateDict}`,
        "pass a state dict, e.g. from qb.io.loadTorch(path) or qb.io.loadSafetensors(path)",
      );
    }
    const params = new Map(this.namedParameters());
    const tensorKeys = Object.keys(stateDict).filter((k) => stateDict[k] instanceof tf.Tensor);
    const missingKeys = [...params.keys()].filter((k) => !(stateDict[k] instanceof tf.Tensor));
    const unexpectedKeys = tensorKeys.filter((k) => !params.has(k));
    const problems: string[] = [];
    let shapeProblems = 0;
    for (const [name, v] of params) {
      const t = stateDict[name];
      if (!(t instanceof tf.Tensor)) continue;
      if (t.shape.length !== v.shape.length || t.shape.some((d: number, i: number) => d !== v.shape[i])) {
        problems.push(`${name}: checkpoint shape [${t.shape}], model shape [${v.shape}]`);
        shapeProblems++;
      }
    }
    if (strict && (missingKeys.length > 0 || unexpectedKeys.length > 0)) {
      problems.push(
        ...(missingKeys.length ? [`missing keys: ${missingKeys.join(", ")}`] : []),
        ...(unexpectedKeys.length ? [`unexpected keys: ${unexpectedKeys.join(", ")}`] : []),
      );
    }
    if (problems.length > 0) {
      throw errors.shapeMismatch(
        `loadStateDict(${this.constructor.name})`,
        problems.join("; "),
        "the model's own names and shapes",
        `nothing was loaded; ${fixAdvice(strict, shapeProblems, missingKeys.length + unexpectedKeys.length)}`,
      );
    }
    for (const [name, v] of params) {
      const t = stateDict[name];
      if (t instanceof tf.Tensor) v.assign(t.dtype === v.dtype ? t : tf.tidy(() => tf.cast(t, v.dtype)));
    }
    return { missingKeys, unexpectedKeys };
  }

  /** Training mode for this module and all below; returns this. */
  train(mode = true): this {
    for (const [, m] of this.namedModules()) m.training = mode;
    return this;
  }

  /** Inference mode for this module and all below; returns this. */
  eval(): this {
    return this.train(false);
  }

  /** Disposes every parameter and constant tensor of this module tree. */
  dispose(): void {
    for (const [, m] of this.namedModules()) {
      for (const value of Object.values(m)) if (value instanceof tf.Tensor) value.dispose();
    }
  }
}

/** What to do about a failed load: name problems and shape problems have different fixes. */
function fixAdvice(strict: boolean, shapeProblems: number, nameProblems: number): string {
  const fixes: string[] = [];
  if (shapeProblems > 0) {
    fixes.push(
      "a shape mismatch means the model was built with other sizes than the checkpoint's: construct it with the sizes the checkpoint has (e.g. in/out features, channels)",
    );
  }
  if (strict && nameProblems > 0) fixes.push("fix the names, or pass { strict: false } to load the keys that match");
  return `${fixes.join("; ")}.`;
}

/**
 * A deep copy of a module tree: new parameters (as variables) and constants, same classes. The
 * copy owns its tensors: they are disposed when the copy is garbage-collected (or by `dispose()`).
 */
export function cloneModule<T extends Module>(m: T): T {
  const created: tf.Tensor[] = [];
  const copy = cloneInto(m, new Map(), created);
  disposeWithOwner(copy, created);
  return copy;
}

function cloneInto<T extends Module>(m: T, seen: Map<Module, Module>, created: tf.Tensor[]): T {
  const done = seen.get(m);
  if (done !== undefined) return done as T; // shared modules stay shared
  const copy = Object.create(Object.getPrototypeOf(m)) as T;
  seen.set(m, copy);
  const cloneValue = (v: unknown): unknown => {
    if (v instanceof Module) return cloneInto(v, seen, created);
    if (v instanceof tf.Tensor) {
      const t = v instanceof tf.Variable ? tf.variable(v, v.trainable) : tf.clone(v);
      created.push(t);
      return t;
    }
    if (Array.isArray(v)) return v.map(cloneValue);
    return v;
  };
  for (const [key, value] of Object.entries(m)) (copy as Record<string, unknown>)[key] = cloneValue(value);
  return copy;
}
