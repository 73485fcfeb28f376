import type { Module } from "../nn/module";
import { FakeQuantState } from "../quant/state";
import { runtimeOf } from "./quantRuntime";
import { errors } from "../messages";

/**
 * Sets the state of every fake-quantizer of a prepared model (see `FakeQuantState`).
 * CALIBRATION and VALIDATION need `model.eval()`, QAT needs `model.train()`; VALIDATION needs
 * every quantized point to have a scale (calibrate first).
 */
export function setFakeQuantize(model: Module, state: FakeQuantState): void {
  const rt = runtimeOf(model, "setFakeQuantize");
  if (!Object.values(FakeQuantState).includes(state)) {
    throw errors.unknownName(
      "setFakeQuantize",
      "state",
      String(state),
      Object.values(FakeQuantState).map((s) => `FakeQuantState.${s}`),
    );
  }
  if ((state === FakeQuantState.CALIBRATION || state === FakeQuantState.VALIDATION) && model.training) {
    throw errors.wrongState(`setFakeQuantize(${state})`, "training mode", "call model.eval() first");
  }
  if (state === FakeQuantState.QAT && !model.training) {
    throw errors.wrongState("setFakeQuantize(QAT)", "eval mode", "call model.train() first");
  }
  if (state === FakeQuantState.VALIDATION) {
    const missing = [...rt.fakeQuantizers()].filter(([, , fq]) => fq.scale() === null).map(([, , fq]) => fq.where);
    if (missing.length > 0) {
      throw errors.notCalibrated("setFakeQuantize(VALIDATION)", missing);
    }
  }
  rt.state = state;
  for (const [, , fq] of rt.fakeQuantizers()) fq.state = state;
}

/** The fake-quant state of a prepared model. */
export function getFakeQuantState(model: Module): FakeQuantState {
  return runtimeOf(model, "getFakeQuantState").state;
}
