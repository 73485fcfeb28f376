/**
 * Progress of long operations (calibrate, QAT, sensitivity, ...). Every step reports through
 * `reportProgress`, which is also where an interrupt request stops the operation.
 */
import { throwIfInterrupted } from "./interrupt";

export interface Progress {
  /** What is running, e.g. "calibrate". */
  task: string;
  done: number;
  /** Total when known (arrays), else undefined. */
  total?: number | undefined;
  elapsedMs: number;
}

export type ProgressCallback = (p: Progress) => void;

export type ProgressMode = "off" | "lines" | "bar";

/** QUANTBOOK_PROGRESS=off|lines|bar; by default a bar on a terminal, lines elsewhere (CI logs). */
export function progressMode(): ProgressMode {
  const v = process.env.QUANTBOOK_PROGRESS;
  if (v === "off" || v === "lines" || v === "bar") return v;
  return process.stderr.isTTY ? "bar" : "lines";
}

/** How often a CI log gets a line about a running task. */
export const PROGRESS_LINE_MS = 5000;
const lastLine = new Map<string, number>();

function eta(p: Progress): string {
  if (p.total === undefined || p.done === 0 || p.done >= p.total) return "";
  return `, about ${(((p.elapsedMs / p.done) * (p.total - p.done)) / 1000).toFixed(0)} s left`;
}

/**
 * Default progress (notebooks get the kernel's progress bar instead): on a terminal one line
 * rewritten in place; in a log (CI) a line when a task starts, every few seconds, and when it ends,
 * with the count, the elapsed time and an estimate of what is left; nothing with QUANTBOOK_PROGRESS=off.
 */
export function terminalProgress(p: Progress): void {
  const mode = progressMode();
  if (mode === "off") return;
  const of = p.total === undefined ? "" : `/${p.total}`;
  const finished = p.total !== undefined && p.done >= p.total;
  if (mode === "bar") {
    process.stderr.write(`\r${p.task}: ${p.done}${of}, ${(p.elapsedMs / 1000).toFixed(1)} s${eta(p)}   `);
    if (finished) process.stderr.write("\n");
    return;
  }
  const now = performance.now();
  const last = lastLine.get(p.task);
  if (!finished && last !== undefined && now - last < PROGRESS_LINE_MS) return;
  const pct = p.total === undefined ? "" : ` (${Math.round((100 * p.done) / p.total)}%)`;
  process.stderr.write(`${p.task}: ${p.done}${of}${pct}, ${(p.elapsedMs / 1000).toFixed(1)} s${eta(p)}\n`);
  if (finished) lastLine.delete(p.task);
  else lastLine.set(p.task, now);
}

let defaultProgress: ProgressCallback = terminalProgress;

/** Replaces the progress display used when a call passes no onProgress (the kernel sets one). */
export function setDefaultProgress(cb: ProgressCallback): void {
  defaultProgress = cb;
}

/** Shows a step's progress, then stops the operation (InterruptedError) if an interrupt was requested. */
export function reportProgress(cb: ProgressCallback | undefined, p: Progress): void {
  (cb ?? defaultProgress)(p);
  throwIfInterrupted(p.task);
}
