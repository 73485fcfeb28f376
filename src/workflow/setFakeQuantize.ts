import type { Module } from "../nn/module";
import { FakeQuantState } from "../quant/state";
import { runtimeOf } from "./quantRuntime";

/**
 * Sets the state of every fake-quantizer of a prepared model (see `FakeQuantState`).
 * CALIBRATION and VALIDATION need `model.eval()`, QAT needs `model.train()`; VALIDATION needs
 * every quantized point to have a scale (calibrate first).
 */
export function setFakeQuantize(model: Module, state: FakeQuantState): void {
  const rt = runtimeOf(model, "setFakeQuantize");
  if (!Object.values(FakeQuantState).includes(state)) {
    throw new Error(`setFakeQuantize: unknown state '${String(state)}'; expected FakeQuantState.CALIBRATION, VALIDATION, QAT or FLOAT`);
  }
  if ((state === FakeQuantState.CALIBRATION || state === FakeQuantState.VALIDATION) && model.training) {
    throw new Error(`setFakeQuantize(${state}): the model is in training mode; call model.eval() first`);
  }
  if (state === FakeQuantState.QAT && !model.training) {
    throw new Error("setFakeQuantize(QAT): the model is in eval mode; call model.train() first");
  }
  if (state === FakeQuantState.VALIDATION) {
    const missing = [...rt.fakeQuantizers()].filter(([, , fq]) => fq.scale() === null).map(([, , fq]) => fq.where);
    if (missing.length > 0) {
      const shown = missing.slice(0, 8).join(", ") + (missing.length > 8 ? `, … (${missing.length} in all)` : "");
      throw new Error(
        `setFakeQuantize(VALIDATION): ${shown} ha${missing.length === 1 ? "s" : "ve"} no scale yet. ` + "Set CALIBRATION and run qb.calibrate(model, batches) first.",
      );
    }
  }
  rt.state = state;
  for (const [, , fq] of rt.fakeQuantizers()) fq.state = state;
}

/** The fake-quant state of a prepared model. */
export function getFakeQuantState(model: Module): FakeQuantState {
  return runtimeOf(model, "getFakeQuantState").state;
}
