/**
 * An analytic latency estimate (not a measurement on a chip): per op, compute time on the unit
 * that runs it (tensor array for GEMMs, at a rate set by the input × weight dtype pair; vector
 * unit for elementwise ops and reductions; LUT unit) plus DDR traffic plus a fixed per-op cost.
 * Parameters live in the march data files (data/*.ts) with where each number comes from.
 *
 * ```ts
 * const p = qb.march.perf(hb);       // or qb.march.perf(ir)
 * p.latencyMs; p.int16MacShare; p.ops;
 * ```
 */
import { findOp } from "../ops";
import { makeTable, type Table } from "../util/table";
import type { Ir, IrNode } from "../ir/types";
import type { DTypeName } from "../quant/dtypes";
import { marchSpec } from "./data";
import { March } from "./march";
import { runsOnCpu } from "./opDtypes";
import { ruleFor, type PerfParams } from "./spec";
import { errors } from "../messages";

type Pair = keyof PerfParams["macRate"];

export interface PerfOp {
  op: string;
  type: string;
  unit: string;
  inputDtypes: string;
  weightDtype: string;
  outputDtype: string;
  macs: Record<Pair, number>;
  /** Elementwise / reduction / lookup operations. */
  elementOps: number;
  bytes: number;
  timeUs: number;
}

/** The estimate as a per-op table with a caption (latency, int16 MAC share and its verdict). */
export interface PerfReport extends Table<PerfOp> {
  march: March;
  latencyMs: number;
  ops: PerfOp[];
  /** MACs with an int16 operand / all MACs. */
  int16MacShare: number;
  /** The reference toolchain's rule of thumb for that share. */
  int16Verdict: "fine (< 10%)" | "worth a review (10-30%)" | "costly (> 30%)";
}

const BYTES: Record<DTypeName, number> = { qint8: 1, qint16: 2, qint32: 4, float32: 4 };
const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

function opCost(n: IrNode, p: PerfParams, unit: string): PerfOp {
  const inD = n.inputs.map((i) => i.quant.dtype);
  const wD = n.weight?.quant.dtype ?? (n.type === "Matmul" ? inD[1] : undefined);
  const outD = n.output.quant.dtype;
  const macs: Record<Pair, number> = { qint8xqint8: 0, qint16xqint8: 0, qint8xqint16: 0, qint16xqint16: 0 };
  let compute = 0;
  let elementOps = 0;
  const wide = (d: DTypeName) => (d === "qint16" ? 2 : 1);
  if (unit === "tensor") {
    const pair = `${inD[0]}x${wD}` as Pair;
    const rate = p.macRate[pair];
    if (!rate) {
      throw errors.unsupported(
        `perf: ${n.name}`,
        `a ${inD[0]} x ${wD} GEMM on this chip`,
        "run qb.march.checkModel and fix its violations before estimating latency",
      );
    }
    macs[pair] = n.flops;
    compute = n.flops / (p.macsPerSecond * p.gemmUtilization * rate);
  } else if (unit === "vector" || unit === "none") {
    elementOps = Math.max(size(n.output.shape), ...n.inputs.map((i) => size(i.shape)));
    compute = (elementOps * wide(outD === "float32" ? inD[0] : outD)) / p.vectorOpsPerSecond;
  } else if (unit === "lut") {
    elementOps = size(n.output.shape);
    compute = elementOps / p.lutOpsPerSecond;
  } else if (unit === "cpu") {
    elementOps = Math.max(size(n.output.shape), ...n.inputs.map((i) => size(i.shape)), n.flops);
    compute = elementOps / p.cpuOpsPerSecond;
  }
  // inputs re-quantized by the op cost a vector pass each
  n.inputs.forEach((i) => {
    if (i.requant) {
      elementOps += size(i.shape);
      compute += size(i.shape) / p.vectorOpsPerSecond;
    }
  });
  const bytes =
    n.inputs.reduce((a, i) => a + size(i.shape) * BYTES[i.quant.dtype], 0) +
    (n.weight ? size(n.weight.shape) * BYTES[n.weight.quant.dtype] : 0) +
    size(n.output.shape) * BYTES[outD];
  const time = p.opOverheadSeconds + compute + bytes / p.bytesPerSecond;
  return {
    op: n.name,
    type: n.type,
    unit,
    inputDtypes: inD.join(","),
    weightDtype: wD ?? "-",
    outputDtype: outD,
    macs,
    elementOps,
    bytes,
    timeUs: time * 1e6,
  };
}

/** Latency estimate of a converted model or an IR on its march (or `march`). */
/** A converted model (`qb.convert`'s HbModel) or anything else that carries its IR and march. */
export interface HasIr {
  readonly ir: Ir;
  readonly march: March;
}

export function perf(model: HasIr | Ir, march?: March): PerfReport {
  const ir = "ir" in model ? model.ir : model;
  const m = march ?? ("ir" in model ? model.march : (ir.march as March));
  const spec = marchSpec(m);
  const ops = ir.nodes.map((n) => {
    // no rule for the op on this march: costed as a CPU op (checkModel reports it)
    // the unit is the op's own (its registry entry); an op the march has no rule for runs on the CPU
    // and so does an op quantized nowhere (a plan's CPU fallback)
    const dtypes = {
      inputs: n.inputs.map((i) => i.quant.dtype),
      weight: n.weight?.quant.dtype,
      output: n.output.quant.dtype,
    };
    const rule = ruleFor(spec, n.type);
    return opCost(
      n,
      spec.perf,
      rule !== undefined && !runsOnCpu(dtypes, rule) ? (findOp(n.type)?.unit ?? "cpu") : "cpu",
    );
  });
  const total = ops.reduce((a, o) => a + o.timeUs, 0);
  const all = ops.reduce((a, o) => a + Object.values(o.macs).reduce((x, y) => x + y, 0), 0);
  const int16 = ops.reduce((a, o) => a + o.macs.qint16xqint8 + o.macs.qint8xqint16 + o.macs.qint16xqint16, 0);
  const share = all === 0 ? 0 : int16 / all;
  const verdict = share < 0.1 ? "fine (< 10%)" : share <= 0.3 ? "worth a review (10-30%)" : "costly (> 30%)";
  const caption = `Estimated latency ${(total / 1000).toFixed(4)} ms on ${m} (an analytic estimate, not a chip measurement); int16 MAC share ${(100 * share).toFixed(1)}%: ${verdict}`;
  const columns = [
    "op",
    "type",
    "unit",
    "input",
    "weight",
    "output",
    "MACs int8xint8",
    "MACs int16xint8",
    "MACs int8xint16",
    "MACs int16xint16",
    "element_ops",
    "bytes",
    "time_us",
  ];
  const table = makeTable(caption, ops, columns, (o) => ({
    op: o.op,
    type: o.type,
    unit: o.unit,
    input: o.inputDtypes,
    weight: o.weightDtype,
    output: o.outputDtype,
    "MACs int8xint8": o.macs.qint8xqint8,
    "MACs int16xint8": o.macs.qint16xqint8,
    "MACs int8xint16": o.macs.qint8xqint16,
    "MACs int16xint16": o.macs.qint16xqint16,
    element_ops: o.elementOps,
    bytes: o.bytes,
    time_us: Number(o.timeUs.toFixed(3)),
  }));
  return { ...table, march: m, latencyMs: total / 1000, ops, int16MacShare: share, int16Verdict: verdict };
}
