/**
 * Every user-facing error quantbook raises, as builder functions (one vocabulary, one wording per
 * situation). Each returns a `QuantbookError` whose `code` says what kind of problem it is and
 * whose message names the op, module path or file, says what was expected and what was found,
 * and how to fix it. An error that wraps another keeps it as `cause`.
 *
 * ```ts
 * throw errors.notCalibrated("export", ["linear2"]);
 * try { ... } catch (e) { if (e instanceof qb.QuantbookError && e.code === "NOT_CALIBRATED") ... }
 * ```
 */

export type ErrorCode =
  | "NOT_PREPARED"
  | "NOT_CALIBRATED"
  | "WRONG_STATE"
  | "BUSY"
  | "INVALID_ARGUMENT"
  | "SHAPE_MISMATCH"
  | "UNKNOWN_NAME"
  | "UNSUPPORTED"
  | "CHIP_RULES"
  | "MISSING_PACKAGE"
  | "BAD_FILE"
  | "INVALID_IR"
  | "OP_FAILED"
  | "BATCH_FAILED"
  | "INTERRUPTED"
  | "INTERNAL"
  | "KERNEL";

export class QuantbookError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "QuantbookError";
  }
}

/**
 * Broken structure found deep inside a file (a parser's own terms, no file name yet): the loader
 * that catches it wraps it in a BAD_FILE error naming the file, and keeps it as the cause.
 */
export class CorruptDataError extends QuantbookError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("BAD_FILE", message, options);
    this.name = "CorruptDataError";
  }
}

/** A QuantbookError that already says where it happened (not a parser's inner one): pass it on as it is. */
export const carriesContext = (e: unknown): e is QuantbookError =>
  e instanceof QuantbookError && !(e instanceof CorruptDataError);

const messageOf = (e: unknown): string => (e instanceof Error ? e.message : String(e));
const list = (xs: string[], n = 5): string =>
  `${xs.slice(0, n).join(", ")}${xs.length > n ? `, … (${xs.length} in all)` : ""}`;

/** Levenshtein distance, for "did you mean". */
function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j];
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length];
}

/** The `n` candidates closest to `name` (edit distance; a containing name counts as close). */
export function nearestNames(name: string, candidates: Iterable<string>, n = 5): string[] {
  const scored = [...new Set(candidates)].map((c) => ({
    c,
    d: c.includes(name) || name.includes(c) ? Math.abs(c.length - name.length) * 0.1 : distance(name, c),
  }));
  return scored
    .sort((a, b) => a.d - b.d || a.c.localeCompare(b.c))
    .slice(0, n)
    .map((s) => s.c);
}

export const errors = {
  /** A call that needs a prepared model got another object. */
  notPrepared: (caller: string) =>
    new QuantbookError(
      "NOT_PREPARED",
      `${caller}: this model was not prepared; call qb.prepare(model, exampleInput, { qconfigSetter }) and pass the model it returns`,
    ),

  /** Quantization points without a scale: their observers never saw data. The one "not calibrated" message. */
  notCalibrated: (caller: string, points: string[]) =>
    new QuantbookError(
      "NOT_CALIBRATED",
      `${caller}: ${list(points)} ha${points.length === 1 ? "s" : "ve"} no scale yet — ${points.length === 1 ? "its observer" : "their observers"} saw no data. ` +
        "Run qb.setFakeQuantize(model, qb.FakeQuantState.CALIBRATION), then await qb.calibrate(model, batches), before VALIDATION, QAT, export or analysis.",
    ),

  /** The model is in a fake-quant state (or train / eval mode) the call cannot run in. */
  wrongState: (caller: string, found: string, fix: string) =>
    new QuantbookError("WRONG_STATE", `${caller}: the model is in ${found}; ${fix}`),

  /** A call that needs the model calibrated and in VALIDATION (export, evaluate, QDQ) found another state. */
  needsValidation: (caller: string, state: string) =>
    new QuantbookError(
      "WRONG_STATE",
      `${caller}: the model is in ${state} state; calibrate it, then call qb.setFakeQuantize(model, qb.FakeQuantState.VALIDATION)`,
    ),

  /** calibrate found the model outside CALIBRATION state. */
  needsCalibrationState: (caller: string, state: string) =>
    new QuantbookError(
      "WRONG_STATE",
      `${caller}: the model is in ${state} state; call qb.setFakeQuantize(model, qb.FakeQuantState.CALIBRATION) first`,
    ),

  /** A long operation still runs on the model (a forgotten await). */
  busy: (caller: string, task: string, seconds: number) =>
    new QuantbookError(
      "BUSY",
      `${caller}: ${task} is still running on this model (started ${seconds.toFixed(1)} s ago); wait for it with \`await ${task}(...)\` before using the model — a call without await returns at once while it runs on`,
    ),

  /** A bad argument: where, what is wrong, and what to pass instead. */
  invalidArgument: (where: string, problem: string, fix: string) =>
    new QuantbookError("INVALID_ARGUMENT", `${where}: ${problem}; ${fix}`),

  /** A choice outside its list (a mode, a padding rule): the value and the list. */
  notOneOf: (where: string, what: string, value: unknown, allowed: readonly string[]) => {
    const near = nearestNames(String(value), allowed);
    return new QuantbookError(
      "INVALID_ARGUMENT",
      `${where}: ${what} '${String(value)}' is not one of ${allowed.join(", ")}${near.length ? ` (nearest: '${near[0]}')` : ""}`,
    );
  },

  /** A number outside the range it must lie in: what, its value, the range (with an example). */
  outOfRange: (where: string, what: string, value: unknown, range: string) =>
    new QuantbookError("INVALID_ARGUMENT", `${where}: ${what} ${String(value)} must be ${range}`),

  /** An axis beyond a tensor's rank. */
  badAxis: (where: string, what: string, axis: number, shape: readonly number[]) =>
    new QuantbookError(
      "SHAPE_MISMATCH",
      `${where}: ${what} ${axis} is out of range for shape [${shape}]; pass an axis in [${-shape.length}, ${shape.length - 1}]`,
    ),

  /** Something that should be a tensor is not. */
  notATensor: (where: string, what: string, value: unknown) =>
    new QuantbookError(
      "INVALID_ARGUMENT",
      `${where}: ${what} is ${value === null ? "null" : typeof value}, expected a tf.Tensor; make it with qb.tf (e.g. qb.tf.tensor(values, shape))`,
    ),

  /** A module path that names no module, or a module of the wrong class. */
  wrongModule: (where: string, path: string, found: object | undefined, expected: string, candidates?: string[]) =>
    new QuantbookError(
      "INVALID_ARGUMENT",
      `${where}: '${path}' is ${found ? `a ${found.constructor.name}` : "not a module of this model"}, expected a ${expected}` +
        (candidates === undefined ? "" : `; its ${expected} modules are: ${candidates.join(", ") || "(none)"}`),
    ),

  /** The integer model met a value it cannot compute in integers (a float where a quantized value must be). */
  needsQuantized: (where: string, what: string) =>
    new QuantbookError(
      "INVALID_ARGUMENT",
      `${where}: ${what} (the integer model computes on codes and their scales); put a QuantStub before float data and give the op a qconfig (qb.analysis.quantSummary shows which ops have none)`,
    ),

  /** Data that is NaN or infinite reached a fake-quantizer during calibration. */
  nonFiniteData: (where: string, detail: string) =>
    new QuantbookError(
      "INVALID_ARGUMENT",
      `${where}: ${detail} — the data reaching this op is not finite. Check the calibration batch for NaN/Inf (or the op before it for overflow) and drop or clean that batch.`,
    ),

  /** An op the traced graph does not have ran (the forward took another path than when prepared). */
  untracedOp: (op: string, type: string) =>
    new QuantbookError(
      "INVALID_ARGUMENT",
      `${op} (${type}): this op did not run when prepare() traced the model, so it has no fake-quantizers. ` +
        "The forward takes a different path now (control flow depending on data or mode); re-run prepare with an input that takes this path.",
    ),

  /** The tensor backend quantbook was told to use (or any) cannot start. */
  backend: (what: string, fix: string) => new QuantbookError("INVALID_ARGUMENT", `${what}; ${fix}`),

  /** Shapes that do not fit: where, what was found, what was expected. */
  shapeMismatch: (where: string, found: string, expected: string, fix?: string) =>
    new QuantbookError("SHAPE_MISMATCH", `${where}: ${found}, expected ${expected}${fix ? `; ${fix}` : ""}`),

  /** A name (module path, op, op type, metric, ...) that does not exist, with the nearest ones that do. */
  unknownName: (where: string, kind: string, name: string, known: Iterable<string>) => {
    const near = nearestNames(name, known);
    return new QuantbookError(
      "UNKNOWN_NAME",
      `${where}: no ${kind} '${name}'${near.length ? `; nearest: ${near.map((n) => `'${n}'`).join(", ")}` : ""}`,
    );
  },

  /** An optional package a feature needs is not installed: what needs it and the install line. */
  missingPackage: (feature: string, pkg: string, install: string, cause?: unknown) =>
    new QuantbookError(
      "MISSING_PACKAGE",
      `${feature} needs ${pkg}, which is not installed (quantbook does not install it for you); install it with \`${install}\``,
      cause === undefined ? undefined : { cause },
    ),

  /**
   * Broken structure inside a file a loader is reading (the loader adds the file's name and keeps
   * this as the cause): what is wrong, in the file's own terms.
   */
  corruptData: (what: string, cause?: unknown) =>
    new CorruptDataError(what, cause === undefined ? undefined : { cause }),

  /** The Jupyter kernel (or its client) cannot start or answer: what happened and what to do. */
  kernel: (what: string, fix: string) => new QuantbookError("KERNEL", `kernel: ${what}; ${fix}`),

  /** A march name quantbook does not know: the one message, wherever a march is taken. */
  unknownMarch: (where: string, march: unknown, known: string[]) =>
    new QuantbookError(
      "INVALID_ARGUMENT",
      `${where}: unknown march '${String(march)}'; expected one of ${known.map((k) => `March.${k}`).join(", ")}`,
    ),

  /** A state quantbook's own code should never reach: a bug to report, not the user's doing. */
  internal: (where: string, what: string) =>
    new QuantbookError(
      "INTERNAL",
      `${where}: ${what} — this is a bug in quantbook; please report it with the code that led here`,
    ),

  /** Something quantbook does not do, and what to do instead. */
  unsupported: (where: string, what: string, fix: string) =>
    new QuantbookError("UNSUPPORTED", `${where}: ${what} is not supported; ${fix}`),

  /** Chip-rule violations that stop a conversion (each line names the op, the rule and the fixes). */
  chipRules: (march: string, violations: string[]) =>
    new QuantbookError(
      "CHIP_RULES",
      `convert: ${violations.length} violation(s) of the ${march} rules:\n${violations.map((v) => `  - ${v}`).join("\n")}`,
    ),

  /** A file that cannot be read or is not what the loader expects; the original error is the cause. */
  badFile: (loader: string, file: string, problem: string, cause?: unknown) =>
    new QuantbookError("BAD_FILE", `${loader}: ${file}: ${problem}`, cause === undefined ? undefined : { cause }),

  /** An IR that fails validation: every problem, each naming its node. */
  invalidIr: (where: string, problems: string[]) =>
    new QuantbookError("INVALID_IR", `${where}: invalid IR: ${problems.join("; ")}`),

  /** An op's computation failed: names the op and its input shapes, keeps the original error. */
  opFailed: (op: string, type: string, cause: unknown, inputShapes: string) =>
    new QuantbookError("OP_FAILED", `${op} (${type}): ${messageOf(cause)} (input shapes ${inputShapes})`, { cause }),

  /** Another error with where it happened in front: it keeps its code (OP_FAILED for a foreign one) and stays the cause. */
  inContext: (context: string, cause: unknown) =>
    new QuantbookError(cause instanceof QuantbookError ? cause.code : "OP_FAILED", `${context}: ${messageOf(cause)}`, {
      cause,
    }),

  /** A calibration batch failed; the observers are as before it. */
  batchFailed: (caller: string, batch: number, cause: unknown) =>
    new QuantbookError(
      "BATCH_FAILED",
      `${caller}: batch ${batch} failed, observers are as before it: ${messageOf(cause)}`,
      { cause },
    ),
};
