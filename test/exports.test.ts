/**
 * quantbook's public names, pinned (as PyTorch pins its top-level APIs): adding or removing a
 * name at the front door, or exporting one name in two places, is a decision made here, in review.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import * as qb from "../src";

/** The front door today (74 names); issue 16 brings it down to about fifteen plus namespaces. */
const FRONT_DOOR = [
  "DeQuantStub",
  "F",
  "FakeQuantState",
  "FixedScaleObserver",
  "FixedScaleQconfigSetter",
  "HbModel",
  "InterruptedError",
  "KLObserver",
  "MIN_COSINE",
  "MSEObserver",
  "March",
  "MinMaxObserver",
  "ModuleNameQconfigSetter",
  "OpTypeQconfigSetter",
  "PercentileObserver",
  "QuantAnalysis",
  "QuantStub",
  "QuantbookError",
  "activeBackend",
  "analysis",
  "biasCorrection",
  "calibrate",
  "calibration8bitWeight16bitActQconfigSetter",
  "calibrationTemplate",
  "checkModel",
  "chooseCalibration",
  "clearOutput",
  "convert",
  "data",
  "defaultCalibrationQconfigSetter",
  "defaultQatQconfigSetter",
  "deploy",
  "display",
  "displayProgress",
  "engine",
  "errors",
  "evaluate",
  "examples",
  "export",
  "getFakeQuantState",
  "getMarch",
  "getQconfig",
  "initBackend",
  "io",
  "loadPlan",
  "makeTable",
  "manualSeed",
  "marchSpec",
  "modelCheckResult",
  "mseLoss",
  "nearestNames",
  "nn",
  "perf",
  "planMixedPrecision",
  "plots",
  "prepare",
  "preparedOps",
  "qat",
  "qat8bitWeight16bitActQconfigSetter",
  "qatStep",
  "qint16",
  "qint32",
  "qint8",
  "quant",
  "quantSummary",
  "scaleExplorer",
  "sensitiveOpQconfigSetter",
  "setDefaultProgress",
  "setEngineOptions",
  "setFakeQuantize",
  "setMarch",
  "tf",
  "toDataFrame",
  "transforms",
];

/** Names exported both at the front door and in a namespace (to be removed from one of them). */
const TWICE: Record<string, string> = {
  QuantStub: "nn",
  DeQuantStub: "nn",
  manualSeed: "nn",
  F: "nn",
  MinMaxObserver: "quant",
  MSEObserver: "quant",
  PercentileObserver: "quant",
  FixedScaleObserver: "quant",
  KLObserver: "quant",
  QuantAnalysis: "analysis",
  sensitiveOpQconfigSetter: "analysis",
  scaleExplorer: "analysis",
};

describe("public names", () => {
  it("the front door is the pinned list: a new or removed name is a decision made here", () => {
    assert.deepEqual(Object.keys(qb).sort(), [...FRONT_DOOR].sort());
  });
  it("no name is exported twice beyond the pinned ones", () => {
    const namespaces = ["nn", "quant", "io", "data", "deploy", "analysis", "transforms", "examples", "plots"] as const;
    const twice: Record<string, string> = {};
    for (const ns of namespaces) for (const k of Object.keys(qb[ns])) if (k in qb) twice[k] = ns;
    assert.deepEqual(twice, TWICE);
  });
});
