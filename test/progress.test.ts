/**
 * Progress outside a notebook: a bar on a terminal, lines in a log (CI) — at the start, every few
 * seconds and at the end, with count, percentage, elapsed time and what is left — and nothing with
 * QUANTBOOK_PROGRESS=off.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { progressMode, terminalProgress } from "../src/util/progress";

function captured(mode: string, fn: () => void): string {
  const saved = process.env.QUANTBOOK_PROGRESS;
  const write = process.stderr.write.bind(process.stderr);
  let out = "";
  process.env.QUANTBOOK_PROGRESS = mode;
  (process.stderr as unknown as { write: (s: string) => boolean }).write = (s: string) => {
    out += s;
    return true;
  };
  try {
    fn();
  } finally {
    process.stderr.write = write;
    if (saved === undefined) delete process.env.QUANTBOOK_PROGRESS;
    else process.env.QUANTBOOK_PROGRESS = saved;
  }
  return out;
}

describe("progress outside a notebook", () => {
  it("lines: the first step, then at most one line every few seconds, and the last; with an estimate of what is left", () => {
    const out = captured("lines", () => {
      for (let done = 1; done <= 10; done++)
        terminalProgress({ task: "calibrate", done, total: 10, elapsedMs: 100 * done });
    });
    assert.equal(out, "calibrate: 1/10 (10%), 0.1 s, about 1 s left\ncalibrate: 10/10 (100%), 1.0 s\n");
    // a task of unknown length still gets its first line
    assert.equal(
      captured("lines", () => terminalProgress({ task: "evaluate", done: 1, elapsedMs: 2500 })),
      "evaluate: 1, 2.5 s\n",
    );
  });

  it("bar rewrites one line; off prints nothing; the mode comes from QUANTBOOK_PROGRESS", () => {
    const bar = captured("bar", () => terminalProgress({ task: "sensitivity", done: 3, total: 4, elapsedMs: 1500 }));
    assert.match(bar, /^\rsensitivity: 3\/4, 1\.5 s, about 1 s left/);
    assert.equal(
      captured("off", () => terminalProgress({ task: "sensitivity", done: 4, total: 4, elapsedMs: 1500 })),
      "",
    );
    const saved = process.env.QUANTBOOK_PROGRESS;
    process.env.QUANTBOOK_PROGRESS = "lines";
    assert.equal(progressMode(), "lines");
    delete process.env.QUANTBOOK_PROGRESS;
    assert.equal(progressMode(), process.stderr.isTTY ? "bar" : "lines");
    if (saved !== undefined) process.env.QUANTBOOK_PROGRESS = saved;
  });
});
