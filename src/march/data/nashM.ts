/**
 * NASH_M (J6M). Same rules as NASH_E (no int16 input with an int16 weight on a GEMM). Perf:
 * 128 TOPS int8 published peak (64e12 MAC/s); other numbers are assumptions as in nashE.ts,
 * scaled up.
 */
import { March } from "../march";
import type { MarchSpec } from "../spec";
import { nashEMOps } from "./common";

export const nashM: MarchSpec = {
  march: March.NASH_M,
  chip: "J6M",
  ops: nashEMOps,
  perf: {
    macsPerSecond: 64e12,
    gemmUtilization: 0.1,
    macRate: { qint8xqint8: 1, qint16xqint8: 0.5, qint8xqint16: 0.25, qint16xqint16: 0 },
    vectorOpsPerSecond: 384e9,
    lutOpsPerSecond: 96e9,
    bytesPerSecond: 68e9,
    opOverheadSeconds: 2e-6,
    // assumption: an op with no BPU rule runs on the SoC's CPU cores at ~1e9 element ops/s, plus a round trip through DDR
    cpuOpsPerSecond: 1e9,
  },
};
