/**
 * `quantbook check`: the quantization gate a team puts in CI, so a retrained model cannot
 * silently lose its quantized accuracy. Imports the ONNX model, calibrates on the data, applies a
 * saved plan, checks the chip's rules, measures the output against float and the latency
 * estimate, prints a table, and exits 1 when a rule is broken or a threshold missed (2 on bad
 * usage).
 */
import { readdirSync, statSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import * as qb from "../src";

export const CHECK_USAGE = `usage: quantbook check MODEL.onnx --march nash-e|nash-m|nash-p --data DIR [options]

  --data DIR            calibration data: .npy files (or calibration_data/<input>/N.npy), or images
                        (.jpg/.png/.bmp, resized to the model's input)
  --plan PLAN.json      a plan saved with plan.save(path) (default: int8, MSE-calibrated)
  --min-cosine C        fail when an output's cosine to float is below C (default 0.99)
  --max-latency-ms X    fail when the estimated latency exceeds X
  --limit N             use at most N samples (default all)
  --json OUT.json       also write the result as JSON`;

export class CheckUsageError extends Error {}

interface CheckOptions {
  model: string;
  march: qb.March;
  data: string;
  plan?: string;
  minCosine: number;
  maxLatencyMs?: number;
  limit?: number;
  json?: string;
}

function parse(args: string[]): CheckOptions | "help" {
  const o: Partial<CheckOptions> = { minCosine: 0.99 };
  const marches: Record<string, qb.March> = {
    "nash-e": qb.March.NASH_E,
    "nash-m": qb.March.NASH_M,
    "nash-p": qb.March.NASH_P,
  };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const value = () => {
      const v = args[++i];
      if (v === undefined || v.startsWith("--"))
        throw new CheckUsageError(`quantbook check: ${a} needs a value\n\n${CHECK_USAGE}`);
      return v;
    };
    const number = (what: string) => {
      const v = value();
      const n = Number(v);
      if (!Number.isFinite(n)) throw new CheckUsageError(`quantbook check: ${what} ${v}: expected a number`);
      return n;
    };
    if (a === "--help" || a === "-h") return "help";
    else if (a === "--march") {
      const v = value().toLowerCase();
      const m = marches[v];
      if (m === undefined)
        throw new CheckUsageError(`quantbook check: --march ${v}: expected one of ${Object.keys(marches).join(", ")}`);
      o.march = m;
    } else if (a === "--data") o.data = value();
    else if (a === "--plan") o.plan = value();
    else if (a === "--min-cosine") o.minCosine = number("--min-cosine");
    else if (a === "--max-latency-ms") o.maxLatencyMs = number("--max-latency-ms");
    else if (a === "--limit") o.limit = number("--limit");
    else if (a === "--json") o.json = value();
    else if (a.startsWith("-")) throw new CheckUsageError(`quantbook check: unknown option ${a}\n\n${CHECK_USAGE}`);
    else if (o.model === undefined) o.model = a;
    else throw new CheckUsageError(`quantbook check: one model at a time (got ${o.model} and ${a})`);
  }
  if (o.model === undefined) throw new CheckUsageError(`quantbook check: name the ONNX model\n\n${CHECK_USAGE}`);
  if (o.march === undefined)
    throw new CheckUsageError(`quantbook check: --march is required (nash-e, nash-m or nash-p)\n\n${CHECK_USAGE}`);
  if (o.data === undefined) throw new CheckUsageError(`quantbook check: --data is required\n\n${CHECK_USAGE}`);
  return o as CheckOptions;
}

/** Whether a folder (or its sub-folders) holds images rather than .npy files. */
function holdsImages(dir: string): boolean {
  const walk = (d: string, depth: number): string[] =>
    readdirSync(d).flatMap((e) => {
      const p = path.join(d, e);
      return statSync(p).isDirectory() && depth < 1 ? walk(p, depth + 1) : [e];
    });
  return walk(dir, 0).some((f) => /\.(jpe?g|png|bmp)$/i.test(f));
}

export interface CheckResult {
  model: string;
  march: string;
  plan: string | null;
  samples: number;
  outputs: { output: number; cosine: number; sqnr_db: number; pass: boolean }[];
  violations: string[];
  latencyMs: number;
  maxLatencyMs: number | null;
  failures: string[];
  passed: boolean;
}

export async function checkCommand(args: string[], log: (s: string) => void = console.log): Promise<number> {
  const o = parse(args);
  if (o === "help") {
    log(CHECK_USAGE);
    return 0;
  }
  qb.setMarch(o.march);
  const model = await qb.io.loadOnnx(o.model);
  const shape = model.onnx.inputs[0]?.dims;
  const data = holdsImages(o.data)
    ? qb.data.imageFolder(o.data, {
        batchSize: 1,
        ...(o.limit ? { limit: o.limit } : {}),
        image:
          shape && typeof shape[2] === "number" && typeof shape[3] === "number" && shape[2] > 0 && shape[3] > 0
            ? { resize: [shape[2], shape[3]], scale: [1 / 255] }
            : { scale: [1 / 255] },
      })
    : qb.data.npyFolder(o.data, { batchSize: 1, ...(o.limit ? { limit: o.limit } : {}) });
  const batches = await data.take();
  try {
    const plan = o.plan ? qb.analysis.loadPlan(o.plan) : null;
    if (plan && plan.march !== o.march) log(`note: the plan was made for ${plan.march}; checking it on ${o.march}`);
    const float = plan ? plan.apply(model) : model;
    const calib = qb.prepare(float.eval(), batches[0], {
      qconfigSetter: plan ? plan.qconfigSetter : [qb.qconfig.defaultCalibrationQconfigSetter],
      warn: false,
    });
    qb.setFakeQuantize(calib, qb.FakeQuantState.CALIBRATION);
    await qb.calibrate(calib, batches);
    qb.setFakeQuantize(calib, qb.FakeQuantState.VALIDATION);
    const ev = await qb.analysis.evaluate(calib, batches, { minCosine: o.minCosine });
    const violations = qb.march
      .checkModel(calib, o.march)
      .violations.filter((v) => v.kind === "rule")
      .map((v) => v.message);
    const latencyMs = violations.length === 0 ? qb.march.perf(qb.export(calib, batches[0]), o.march).latencyMs : NaN;
    const failures = [
      ...violations.map((v) => `chip rule: ${v}`),
      ...ev.rows
        .filter((r) => !r.pass)
        .map((r) => `output ${r.output}: cosine ${r.cosine.toFixed(6)} < ${o.minCosine}`),
      ...(o.maxLatencyMs !== undefined && !(latencyMs <= o.maxLatencyMs)
        ? [`latency ${latencyMs.toFixed(4)} ms > ${o.maxLatencyMs} ms`]
        : []),
    ];
    const result: CheckResult = {
      model: o.model,
      march: o.march,
      plan: o.plan ?? null,
      samples: ev.samples,
      outputs: ev.rows.map((r) => ({ output: r.output, cosine: r.cosine, sqnr_db: r.sqnr_db, pass: r.pass })),
      violations,
      latencyMs,
      maxLatencyMs: o.maxLatencyMs ?? null,
      failures,
      passed: failures.length === 0,
    };
    log(
      `quantbook check ${path.basename(o.model)} on ${o.march}${o.plan ? ` with ${path.basename(o.plan)}` : ""}, ${ev.samples} samples`,
    );
    log(ev.text.trimEnd());
    log(
      `chip rules: ${violations.length === 0 ? "pass" : `${violations.length} violation(s)`}; estimated latency ${Number.isNaN(latencyMs) ? "- (rules broken)" : `${latencyMs.toFixed(4)} ms`}${o.maxLatencyMs !== undefined ? ` (max ${o.maxLatencyMs})` : ""}`,
    );
    log(result.passed ? "PASS" : `FAIL\n${failures.map((f) => `  - ${f}`).join("\n")}`);
    if (o.json) writeFileSync(o.json, JSON.stringify(result, null, 2) + "\n");
    calib.dispose();
    if (float !== model) float.dispose();
    return result.passed ? 0 : 1;
  } finally {
    batches.flat().forEach((t) => t.dispose());
    model.dispose();
  }
}
