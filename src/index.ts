/**
 * quantbook: simulate Horizon's quantization toolchain in TypeScript.
 *
 * ```ts
 * import * as qb from "quantbook";
 * qb.setMarch(qb.March.NASH_M);
 * const calib = qb.prepare(model.eval(), x, { qconfigSetter: [qb.qconfig.calibration8bitWeight16bitActQconfigSetter] });
 * qb.setFakeQuantize(calib, qb.FakeQuantState.CALIBRATION);
 * await qb.calibrate(calib, [x]);
 * qb.setFakeQuantize(calib, qb.FakeQuantState.VALIDATION);
 * const y = calib.forward(x);
 * ```
 *
 * The front door is fifteen names — the DSL's verbs and what they take — and namespaces for the
 * rest. test/exports.test.ts pins it: a new name here is a decision.
 */
/** The tfjs instance quantbook computes with: make tensors with it, so that they mix with quantbook's. */
export * as tf from "@tensorflow/tfjs";
export * as nn from "./nn";
export * as F from "./nn/functional";
export * as qconfig from "./api/qconfig";
export { March, setMarch } from "./march/march";
export { FakeQuantState } from "./quant/state";
export { qint8, qint16, type QuantDType } from "./quant/dtypes";
export { prepare, type PrepareOptions } from "./workflow/prepare";
export { setFakeQuantize } from "./workflow/setFakeQuantize";
export { calibrate } from "./workflow/calibrate";
export { exportModel as export } from "./workflow/export";
export { convert } from "./convert/convert";
export { QuantbookError, type ErrorCode } from "./messages";

// namespaces
export * as quant from "./quant";
export * as analysis from "./api/analysis";
export * as march from "./api/march";
export * as io from "./io";
export * as data from "./io/dataset";
export * as deploy from "./api/deploy";
export * as transforms from "./transforms";
export * as examples from "./examples";
export * as plots from "./display/plots";
export * as display from "./api/display";
export * as backend from "./api/backend";
export * as qat from "./api/qat";
