/**
 * NASH_P (J6P). Its GEMMs accept int16 input with an int16 weight (the restriction of
 * NASH_E/M does not apply). Perf: 560 TOPS int8 published peak (280e12 MAC/s); int16 x int16
 * assumed at a quarter of int8's rate; the rest are assumptions as in nashE.ts.
 */
import { March } from "../march";
import type { MarchSpec } from "../spec";
import { gemm, matmul, nashCommonOps } from "./common";

export const nashP: MarchSpec = {
  march: March.NASH_P,
  chip: "J6P",
  ops: { ...nashCommonOps, Linear: gemm(), Conv2d: gemm(), ConvTranspose2d: gemm(), Matmul: matmul() },
  perf: {
    macsPerSecond: 280e12,
    gemmUtilization: 0.1,
    macRate: { qint8xqint8: 1, qint16xqint8: 0.5, qint8xqint16: 0.25, qint16xqint16: 0.125 },
    vectorOpsPerSecond: 1024e9,
    lutOpsPerSecond: 256e9,
    bytesPerSecond: 200e9,
    opOverheadSeconds: 2e-6,
    // assumption: an op with no BPU rule runs on the SoC's CPU cores at ~1e9 element ops/s, plus a round trip through DDR
    cpuOpsPerSecond: 1e9,
  },
};
