import type { Progress, ProgressCallback } from "../util/progress";
import { escapeHtml } from "../util/display";
import { displayBundle } from "./sink";

/**
 * A progress display that updates one output in place (HTML progress bar + text), throttled to
 * a few updates a second. The kernel makes it the default for calibrate and sensitivity runs.
 */
export function displayProgress(minIntervalMs = 200): ProgressCallback {
  let id = "";
  let last = 0;
  let seq = 0;
  return (p: Progress) => {
    const now = performance.now();
    const finished = p.total !== undefined && p.done >= p.total;
    if (p.done === 1 || id === "") {
      id = `qb-progress-${process.pid}-${++seq}`;
      last = 0;
    }
    if (!finished && now - last < minIntervalMs && p.done !== 1) return;
    last = now;
    const of = p.total === undefined ? "" : `/${p.total}`;
    // the final text carries no timing, so executed notebooks come out the same on every run
    const text = finished
      ? `${p.task}: ${p.done}${of} done`
      : `${p.task}: ${p.done}${of} (${(p.elapsedMs / 1000).toFixed(1)} s)`;
    const bar = p.total === undefined ? "" : `<progress value="${p.done}" max="${p.total}"></progress> `;
    displayBundle(
      { "text/html": `<div class="qb-progress">${bar}${escapeHtml(text)}</div>`, "text/plain": text },
      { displayId: id, update: p.done !== 1 },
    );
  };
}
