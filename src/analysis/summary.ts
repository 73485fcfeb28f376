import { makeTable, type Table } from "../util/table";
import { opDtypes } from "../march/opDtypes";
import type { Module } from "../nn/module";
import type { FakeQuantizer } from "../quant/fakeQuantizer";
import { runtimeOf } from "../workflow/quantRuntime";

export interface SummaryRow {
  op: string;
  type: string;
  inputs: string;
  weight: string;
  weight_scale: string;
  output: string;
  output_scale: string;
  observer: string;
}

function scaleText(fq: FakeQuantizer | null): string {
  const s = fq?.scale() ?? null;
  if (s === null) return fq ? "(not calibrated)" : "";
  if (s.length === 1) return s[0].toPrecision(5);
  return `per-channel[${s.length}] ${Math.min(...s).toPrecision(3)}..${Math.max(...s).toPrecision(3)}`;
}

/**
 * One row per op of a prepared model: the dtypes it sees, its scales and its output observer —
 * what `prepare` decided, at a glance.
 *
 * ```ts
 * qb.analysis.quantSummary(calib)        // a table in notebooks; .rows for code
 * ```
 */
export function quantSummary(model: Module): Table<SummaryRow> {
  const rt = runtimeOf(model, "quantSummary");
  const dtypes = new Map(opDtypes(model).map((d) => [d.name, d]));
  const rows = [...rt.ops.values()].map((op) => {
    const d = dtypes.get(op.info.name);
    return {
      op: op.info.name,
      type: op.info.type,
      inputs: d?.inputs.join(", ") ?? "",
      weight: d?.weight ?? "",
      weight_scale: scaleText(op.weight),
      output: d?.output ?? "",
      output_scale: scaleText(rt.outputQuantizer(op.info.name)),
      observer: op.output ? op.output.observer.constructor.name : "",
    };
  });
  return makeTable(`Quantization of ${rows.length} ops (state ${rt.state}, march ${rt.march ?? "unset"})`, rows, [
    "op",
    "type",
    "inputs",
    "weight",
    "weight_scale",
    "output",
    "output_scale",
    "observer",
  ]);
}
