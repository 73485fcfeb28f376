/**
 * Chip-rule check: every op's dtypes against its march's table. Returns every violation —
 * never ignores one — each naming the op, the rule, the dtypes found and how to fix it.
 *
 * ```ts
 * const res = qb.march.checkModel(calib, qb.March.NASH_M);
 * res.ok;            // false
 * res.violations[0].message;
 * // "linear2: NASH_M Linear cannot take int16 input with int16 weight; ..."
 * ```
 */
import { makeTable, type Table } from "../util/table";
import type { Module } from "../nn/module";
import type { Ir } from "../ir/types";
import { marchSpec } from "./data";
import { March } from "./march";
import { opDtypes, runsOnCpu, type OpDtypes } from "./opDtypes";
import { ruleFor, type Role } from "./spec";

export interface Violation {
  /**
   * "rule": the chip refuses these dtypes; "no-rule": the march's data has no rule for the op type
   * (assumed CPU); "cpu": the op is quantized nowhere, so it runs in float on the CPU.
   */
  kind: "rule" | "no-rule" | "cpu";
  op: string;
  opType: string;
  module: string;
  /** The rule in words. */
  rule: string;
  /** Dtypes found, by role. */
  actual: Partial<Record<Role | `input_${number}`, string>>;
  fixes: string[];
  /** One line: what, where, and what to do. */
  message: string;
}

/** The check as a table of violations (kind, op, op_type, rule, dtypes, fixes) with a caption. */
export interface CheckResult extends Table<Violation> {
  march: March;
  ok: boolean;
  violations: Violation[];
  /** Ops checked. */
  checked: number;
}

function marchName(m: March): string {
  return Object.keys(March).find((k) => March[k as keyof typeof March] === m) ?? String(m);
}

function actualOf(d: OpDtypes): Violation["actual"] {
  const a: Violation["actual"] = {};
  d.inputs.forEach((t, i) => (a[`input_${i}`] = t));
  if (d.weight !== undefined) a.weight = d.weight;
  a.output = d.output;
  return a;
}

function violation(
  d: OpDtypes,
  march: March,
  rule: string,
  fixes: string[],
  kind: Violation["kind"] = "rule",
): Violation {
  const filled = fixes.map((f) => f.replace(/\{op\}/g, d.name).replace(/\{module\}/g, d.module || d.name));
  const message = `${d.name}: ${marchName(march)} ${d.type} ${rule}; ${filled.length ? `fix: ${filled.join(", or ")}` : "no fix known"}`;
  return { kind, op: d.name, opType: d.type, module: d.module, rule, actual: actualOf(d), fixes: filled, message };
}

export function checkOpDtypes(ops: OpDtypes[], march: March): CheckResult {
  const spec = marchSpec(march);
  const violations: Violation[] = [];
  for (const d of ops) {
    const rule = ruleFor(spec, d.type);
    if (rule !== undefined && runsOnCpu(d, rule)) {
      violations.push(
        violation(
          d,
          march,
          "is not quantized (float weight, or float inputs and output) — it runs in float on the CPU",
          ["give it a quantized qconfig to run it on the BPU"],
          "cpu",
        ),
      );
      continue;
    }
    if (rule === undefined) {
      violations.push(
        violation(
          d,
          march,
          "has no rule known for this march — assumed to run on the CPU",
          ["replace it with ops the BPU runs", `or add a rule for ${d.type} to src/march/data/ if the chip runs it`],
          "no-rule",
        ),
      );
      continue;
    }
    d.inputs.forEach((t, i) => {
      if (!rule.input.includes(t)) {
        const fix =
          t === "float32"
            ? "quantize it: put a QuantStub before it or give its producer a quantized output"
            : `use ${rule.input.join(" or ")}`;
        violations.push(violation(d, march, `input ${i} is ${t}, expected ${rule.input.join(" or ")}`, [fix]));
      }
    });
    if (d.weight !== undefined && rule.weight && !rule.weight.includes(d.weight)) {
      violations.push(
        violation(d, march, `weight is ${d.weight}, expected ${rule.weight.join(" or ")}`, [
          "give it a weight qconfig (e.g. weightDtype: qint8)",
        ]),
      );
    }
    if (!rule.output.includes(d.output)) {
      violations.push(
        violation(d, march, `output is ${d.output}, expected ${rule.output.join(" or ")}`, [
          `give it an output qconfig with ${rule.output.join(" or ")}`,
        ]),
      );
    }
    const roles: Partial<Record<Role, string | undefined>> = {
      input_0: d.inputs[0],
      input_1: d.inputs[1],
      weight: d.weight,
      output: d.output,
    };
    for (const combo of rule.forbidden ?? []) {
      const hit = Object.entries(combo.when).every(([role, dtype]) => roles[role as Role] === dtype);
      if (hit) violations.push(violation(d, march, combo.rule, combo.fixes));
    }
  }
  const n = violations.length;
  const caption = `Chip rules ${march}: ${n === 0 ? "every op passes" : `${n} violation${n === 1 ? "" : "s"}`} (${ops.length} ops checked)`;
  const table = makeTable(caption, violations, ["kind", "op", "op_type", "rule", "dtypes", "fixes"], (v) => ({
    kind: v.kind,
    op: v.op,
    op_type: v.opType,
    rule: v.rule,
    dtypes: Object.entries(v.actual)
      .map(([k, d]) => `${k}=${d}`)
      .join(" "),
    fixes: v.fixes.join(" | "),
  }));
  return { ...table, march, ok: n === 0, violations, checked: ops.length };
}

/** Checks a prepared model (or an exported IR) against `march`'s rules. */
export function checkModel(modelOrIr: Module | Ir, march: March): CheckResult {
  return checkOpDtypes(opDtypes(modelOrIr), march);
}
