import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import * as path from "node:path";
import * as qb from "../src";

export const FIXTURES = path.join(__dirname, "..", "..", "test", "fixtures");

export function fixture(name: string): string {
  return path.join(FIXTURES, name);
}

export function readJson<T>(name: string): T {
  return JSON.parse(readFileSync(fixture(name), "utf8")) as T;
}

export async function setup(): Promise<void> {
  // the tests' own logs stay quiet (progress lines are tested in progress.test.ts)
  process.env.QUANTBOOK_PROGRESS ??= "off";
  await qb.backend.init();
  qb.setMarch(qb.March.NASH_M);
}

export function maxAbsDiff(a: tf.Tensor | ArrayLike<number>, b: tf.Tensor | ArrayLike<number>): number {
  const x = a instanceof tf.Tensor ? a.dataSync() : a;
  const y = b instanceof tf.Tensor ? b.dataSync() : b;
  assert.equal(x.length, y.length, "lengths differ");
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i] - y[i]));
  return m;
}

/** Runs fn `times` times and checks that the number of live tensors does not grow. */
export async function assertNoLeak(fn: () => unknown | Promise<unknown>, times = 3): Promise<void> {
  await fn(); // warm-up may cache constants
  const before = tf.memory().numTensors;
  for (let i = 0; i < times; i++) await fn();
  assert.equal(tf.memory().numTensors, before, "tensors leaked");
}

/** Asserts that fn throws and that the message matches every pattern. */
export async function assertThrows(fn: () => unknown, ...patterns: RegExp[]): Promise<string> {
  let msg: string | null = null;
  try {
    await fn();
  } catch (e) {
    msg = e instanceof Error ? e.message : String(e);
  }
  assert.notEqual(msg, null, "expected an error");
  for (const p of patterns) assert.match(msg as string, p);
  return msg as string;
}

/** `fn` throws exactly the error a messages.ts builder makes (code and message). */
export async function assertThrowsError(fn: () => unknown, expected: qb.QuantbookError): Promise<void> {
  let got: unknown = null;
  try {
    await fn();
  } catch (e) {
    got = e;
  }
  assert.ok(
    got instanceof qb.QuantbookError,
    `expected a QuantbookError (${expected.code}), got ${got instanceof Error ? `${got.name}: ${got.message}` : String(got)}`,
  );
  assert.equal(got.code, expected.code);
  assert.equal(got.message, expected.message);
}

/** prepare → calibrate on `data` → VALIDATION: the calibrated model, ready to compare. */
export async function calibrated<T extends qb.nn.Module>(
  m: T,
  data: tf.Tensor,
  setters: qb.qconfig.QconfigSetter[],
): Promise<T> {
  const c = qb.prepare(m.eval(), data, { qconfigSetter: setters });
  qb.setFakeQuantize(c, qb.FakeQuantState.CALIBRATION);
  await qb.calibrate(c, [data], { onProgress: () => {} });
  qb.setFakeQuantize(c, qb.FakeQuantState.VALIDATION);
  return c;
}

/** Asserts that at least `fraction` of `got` lies within `step` of `want` (one output step). */
export function assertWithinOneStep(
  got: ArrayLike<number>,
  want: ArrayLike<number>,
  step: number,
  fraction = 0.999,
): void {
  assert.equal(got.length, want.length, "lengths differ");
  let within = 0;
  // the values are float32: a difference of exactly one step carries their rounding (a few ulps) too
  for (let i = 0; i < got.length; i++)
    if (Math.abs(got[i] - want[i]) <= step + 4 * Math.abs(want[i]) * 2 ** -24) within++;
  assert.ok(within / got.length >= fraction, `${within}/${got.length} within one step of ${step}`);
}

/** IR nodes whose output nothing reads (and the graph does not return). */
export function deadOps(ir: qb.march.Ir): string[] {
  const read = new Set(ir.nodes.flatMap((n) => n.inputs.map((inp) => inp.source)));
  return ir.nodes.filter((n) => !read.has(n.name) && !ir.outputs.includes(n.name)).map((n) => `${n.name} (${n.type})`);
}

/**
 * Prepares an imported model with one template, calibrates on `x`, exports it, and runs it as
 * fake quantization and as the integer model; no chip-rule violation is allowed on NASH_M.
 */
export async function quantizeAndConvert(
  m: qb.io.OnnxGraphModule,
  x: tf.Tensor | tf.Tensor[],
  setter: qb.qconfig.QconfigSetter = qb.qconfig.defaultCalibrationQconfigSetter,
) {
  const xs = Array.isArray(x) ? x : [x];
  const c = qb.prepare(m.eval(), x, { qconfigSetter: [setter], warn: false });
  qb.setFakeQuantize(c, qb.FakeQuantState.CALIBRATION);
  await qb.calibrate(c, [x]);
  qb.setFakeQuantize(c, qb.FakeQuantState.VALIDATION);
  const ir = qb.export(c, x);
  assert.deepEqual(
    qb.march.checkModel(ir, qb.March.NASH_M).violations.map((v) => v.message),
    [],
  );
  assert.deepEqual(deadOps(ir), []);
  const fq = (c.forward as unknown as (...a: tf.Tensor[]) => tf.Tensor)(...xs);
  const yi = qb.convert(ir, qb.March.NASH_M).forward(...xs);
  return { c, ir, fq, yi };
}
