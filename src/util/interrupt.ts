/**
 * Cooperative interruption of quantbook's long operations (calibrate, sensitivity, statistics,
 * scale sweeps): they call `throwIfInterrupted` at every progress step, so an interrupt stops them
 * between two batches or two ops, with the model restored by their own `finally` blocks.
 *
 * A host (the Jupyter kernel) may share a flag word with another thread, so an interrupt can be
 * requested while the main thread is busy in synchronous code: `useInterruptFlag(new Int32Array(sab))`.
 */
import { QuantbookError } from "../messages";

let flag: Int32Array = new Int32Array(1);

export class InterruptedError extends QuantbookError {
  constructor(task: string) {
    super("INTERRUPTED", `${task}: interrupted by the user; the model is as it was before the interrupted step`);
    this.name = "InterruptedError";
  }
}

/** Uses `shared[0]` as the interrupt flag (non-zero: interrupt requested). */
export function useInterruptFlag(shared: Int32Array): void {
  flag = shared;
}

export function requestInterrupt(): void {
  Atomics.store(flag, 0, 1);
}

export function clearInterrupt(): void {
  Atomics.store(flag, 0, 0);
}

export function interruptRequested(): boolean {
  return Atomics.load(flag, 0) !== 0;
}

/** Throws `InterruptedError` naming `task` when an interrupt was requested. */
export function throwIfInterrupted(task: string): void {
  if (interruptRequested()) throw new InterruptedError(task);
}
