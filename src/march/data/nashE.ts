/**
 * NASH_E (J6E). Rules: the BPU's GEMMs take int8 or int16 inputs and weights but not int16 on
 * both sides (stated in Horizon's J6E/M material). Perf numbers are assumptions: 80 TOPS int8
 * is the chip's published peak (40e12 MAC/s); the dtype-pair rates encode the toolchain's
 * rule of thumb that int16 on one side costs about twice int8, and our assumption that an int16
 * weight costs more than an int16 input (weights are split into two int8 passes); vector, LUT
 * and DDR figures are round numbers of the right order, not datasheet values.
 */
import { March } from "../march";
import type { MarchSpec } from "../spec";
import { nashEMOps } from "./common";

export const nashE: MarchSpec = {
  march: March.NASH_E,
  chip: "J6E",
  ops: nashEMOps,
  perf: {
    macsPerSecond: 40e12,
    gemmUtilization: 0.1,
    macRate: { qint8xqint8: 1, qint16xqint8: 0.5, qint8xqint16: 0.25, qint16xqint16: 0 },
    vectorOpsPerSecond: 256e9,
    lutOpsPerSecond: 64e9,
    bytesPerSecond: 51.2e9,
    opOverheadSeconds: 2e-6,
    // assumption: an op with no BPU rule runs on the SoC's CPU cores at ~1e9 element ops/s, plus a round trip through DDR
    cpuOpsPerSecond: 1e9,
  },
};
