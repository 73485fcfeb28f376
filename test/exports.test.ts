/**
 * quantbook's public names, pinned (as PyTorch pins its top-level APIs): adding or removing a
 * name at the front door, or exporting one name in two places, is a decision made here, in review.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import * as qb from "../src";

/** The front door: fifteen names — the DSL's verbs and what they take (issue 16: 74 before, 12 of them twice). */
const FRONT_DOOR = [
  "tf",
  "nn",
  "F",
  "qconfig",
  "March",
  "setMarch",
  "FakeQuantState",
  "qint8",
  "qint16",
  "prepare",
  "setFakeQuantize",
  "calibrate",
  "export",
  "convert",
  "QuantbookError",
];

/** The namespaces for the rest. */
const NAMESPACES = [
  "quant",
  "analysis",
  "march",
  "io",
  "data",
  "deploy",
  "transforms",
  "examples",
  "plots",
  "display",
  "backend",
  "qat",
];

describe("public names", () => {
  it("the front door is the pinned list: a new or removed name is a decision made here", () => {
    assert.deepEqual(Object.keys(qb).sort(), [...FRONT_DOOR, ...NAMESPACES].sort());
  });
  it("no name is exported twice: not at the front door and in a namespace, nor in two namespaces", () => {
    const where = new Map<string, string[]>();
    for (const ns of [...NAMESPACES, "nn", "F", "qconfig"]) {
      for (const k of Object.keys((qb as unknown as Record<string, object>)[ns]))
        where.set(k, [...(where.get(k) ?? []), ns]);
    }
    const twice = [...where]
      .filter(([k, nss]) => nss.length > 1 || k in qb)
      .map(([k, nss]) => `${k}: ${nss.join(", ")}`);
    assert.deepEqual(twice, []);
  });
});
