/**
 * What fake-quantizers do, set model-wide by `setFakeQuantize`:
 *
 * | state        | observers | fake quantization | model mode |
 * |--------------|-----------|-------------------|------------|
 * | CALIBRATION  | update    | off (float out)   | eval()     |
 * | VALIDATION   | frozen    | on                | eval()     |
 * | QAT          | update    | on, straight-through gradient | train() |
 * | FLOAT        | off       | off               | any        |
 */
export enum FakeQuantState {
  CALIBRATION = "CALIBRATION",
  VALIDATION = "VALIDATION",
  QAT = "QAT",
  FLOAT = "FLOAT",
}
