import { qint16, type QuantDType } from "../quant/dtypes";
import type { QConfig } from "../quant/qconfig";
import type { QconfigSetter } from "../workflow/qconfigSetters";
import { graphNames } from "../workflow/qconfigSetters";
import type { SensitivityRow } from "./sensitivity";
import { errors } from "../messages";

export interface SensitiveSetterOptions {
  /** Promote the k worst rows. */
  topk?: number;
  /** Or promote this fraction (0..1] of the rows, worst first. */
  ratio?: number;
  /** Which rows count (default both). */
  sensitiveType?: "activation" | "weight" | "both";
  /** The dtype to promote to (default qint16). */
  highDtype?: QuantDType;
}

/**
 * A qconfig setter that promotes the worst ops of a sensitivity table to a higher dtype: an
 * "activation" row raises the op's output, a "weight" row its weight. Put it before the template.
 *
 * ```ts
 * const table = analysis.sensitivity({ data: x });
 * qb.prepare(model, x, { qconfigSetter: [qb.qconfig.sensitiveOpQconfigSetter(table, { topk: 2 }), qb.qconfig.calibration8bitWeight16bitActQconfigSetter] });
 * ```
 */
export function sensitiveOpQconfigSetter(
  table: SensitivityRow[] | { rows: SensitivityRow[] },
  opts: SensitiveSetterOptions = {},
): QconfigSetter {
  const rows = Array.isArray(table) ? table : table.rows;
  if (!Array.isArray(rows))
    throw errors.invalidArgument(
      "sensitiveOpQconfigSetter",
      "the first argument is not a sensitivity table",
      "pass the table (or its rows) from QuantAnalysis.sensitivity",
    );
  if ((opts.topk === undefined) === (opts.ratio === undefined))
    throw errors.invalidArgument(
      "sensitiveOpQconfigSetter",
      "topk and ratio are both given, or neither",
      "pass exactly one of topk or ratio",
    );
  if (opts.ratio !== undefined && !(opts.ratio > 0 && opts.ratio <= 1))
    throw errors.outOfRange("sensitiveOpQconfigSetter", "ratio", opts.ratio, "in (0, 1]");
  const kind = opts.sensitiveType ?? "both";
  const eligible = rows.filter((r) => kind === "both" || r.sensitive_type === kind);
  const count = opts.topk ?? Math.ceil((opts.ratio as number) * eligible.length);
  const high = opts.highDtype ?? qint16;
  const byOp = new Map<string, QConfig>();
  for (const r of eligible.slice(0, count)) {
    const qc = byOp.get(r.op_name) ?? {};
    if (r.sensitive_type === "weight") qc.weight = { dtype: high };
    else qc.output = { dtype: high };
    byOp.set(r.op_name, qc);
  }
  return {
    setterName: "sensitiveOpQconfigSetter",
    qconfigFor: (op) => byOp.get(op.name),
    validate(graph) {
      for (const name of byOp.keys()) {
        if (!graph.byName.has(name))
          throw errors.unknownName(
            "sensitiveOpQconfigSetter (was the table made on another model?)",
            "op",
            name,
            graphNames(graph),
          );
      }
    },
  };
}
