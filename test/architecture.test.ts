/**
 * The floors of docs/ARCHITECTURE.md are the ones ESLint enforces (layers.js), in the same order,
 * and every folder of src/ is on exactly one floor.
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import * as path from "node:path";
import { describe, it } from "node:test";

const ROOT = path.join(__dirname, "..", "..");

describe("architecture", () => {
  it("the page shows the floors ESLint enforces, and every folder of src/ is on one", () => {
    const { FLOORS } = require(path.join(ROOT, "layers.js")) as { FLOORS: string[][] };
    const page = readFileSync(path.join(ROOT, "docs", "ARCHITECTURE.md"), "utf8");
    // "floor  6  march   transforms   examples — what they hold"
    const shown = [...page.matchAll(/^floor +(\d+) +([a-z ]+?) *—/gm)]
      .map((m) => ({ floor: Number(m[1]), folders: m[2].trim().split(/ +/) }))
      .sort((a, b) => a.floor - b.floor)
      .map((f) => f.folders);
    assert.deepEqual(shown, FLOORS);
    const folders = readdirSync(path.join(ROOT, "src")).filter((f) =>
      statSync(path.join(ROOT, "src", f)).isDirectory(),
    );
    assert.deepEqual([...folders].sort(), FLOORS.flat().sort(), "every folder of src/ on exactly one floor");
  });
});
