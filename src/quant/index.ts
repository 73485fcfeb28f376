export { fakeQuantize, quantizeToInt, type FakeQuantizeOptions, type RoundMode } from "./fakeQuantize";
export { scaleFromRange, FLOAT32_EPS } from "./scale";
export { FakeQuantizer } from "./fakeQuantizer";
export * from "./observers";
export { qint32, type QuantDType } from "./dtypes";
