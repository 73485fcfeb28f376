/**
 * quantbook's long asynchronous operations that are running now (qb.calibrate, ...). A host (the
 * kernel) asks after a cell which ones the cell started and left running — a forgotten `await`.
 */
export interface Operation {
  task: string;
  /** performance.now() when it started. */
  since: number;
}

const running = new Set<Operation>();

/** Registers a running operation; call the returned function when it ends (in a finally). */
export function beginOperation(task: string): { op: Operation; end: () => void } {
  const op = { task, since: performance.now() };
  running.add(op);
  return { op, end: () => running.delete(op) };
}

export function runningOperations(): Operation[] {
  return [...running];
}
