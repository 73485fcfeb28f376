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

/** Default progress: a line on a terminal's stderr (notebooks get the kernel's progress bar). */
export function terminalProgress(p: Progress): void {
  if (!process.stderr.isTTY) return;
  const of = p.total === undefined ? "" : `/${p.total}`;
  process.stderr.write(`\r${p.task}: ${p.done}${of} batches, ${(p.elapsedMs / 1000).toFixed(1)} s`);
  if (p.total !== undefined && p.done === p.total) process.stderr.write("\n");
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
