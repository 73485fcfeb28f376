/**
 * The kernel keeps the user's work: it survives stray promises and timer throws, delivers every
 * printed line, stops quantbook's long operations on interrupt, keeps a failed cell's
 * declarations, names cell lines in tracebacks, and imports quantbook from any folder.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { KernelClient, type ExecuteResult, type NbOutput } from "../kernel/client";
import { install } from "../kernel/main";

const OUTPUT_CAP = 2_000_000;

function only<T extends NbOutput["output_type"]>(outs: NbOutput[], type: T): Extract<NbOutput, { output_type: T }>[] {
  return outs.filter((o) => o.output_type === type) as Extract<NbOutput, { output_type: T }>[];
}
const valueOf = (r: ExecuteResult): string => String(only(r.outputs, "execute_result")[0]?.data["text/plain"]);
const streamText = (r: ExecuteResult, name = "stdout"): string =>
  only(r.outputs, "stream")
    .filter((s) => s.name === name)
    .map((s) => s.text)
    .join("");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Interrupts (by `how`) every 300 ms until the cell ends. */
async function interruptUntilDone(
  cell: Promise<ExecuteResult>,
  how: () => unknown,
  firstAfterMs = 300,
): Promise<ExecuteResult> {
  let done = false;
  void cell.then(() => (done = true));
  await sleep(firstAfterMs);
  while (!done) {
    await how();
    await sleep(300);
  }
  return cell;
}

describe("kernel robustness", { timeout: 240000 }, () => {
  let k: KernelClient;
  let dir: string;
  let saved: string | undefined;
  before(async () => {
    // a notebook folder outside the checkout, and the kernelspec as `npm run kernel:install` writes it
    dir = mkdtempSync(path.join(tmpdir(), "qb-user-notebooks-"));
    const specDir = install({ prefix: path.join(dir, "prefix") });
    const spec = JSON.parse(readFileSync(path.join(specDir, "kernel.json"), "utf8")) as { argv: string[] };
    saved = process.env.QUANTBOOK_MAX_OUTPUT_BYTES;
    process.env.QUANTBOOK_MAX_OUTPUT_BYTES = String(OUTPUT_CAP);
    k = await KernelClient.start(spec.argv, dir);
  });
  after(async () => {
    await k.shutdown();
    if (saved === undefined) delete process.env.QUANTBOOK_MAX_OUTPUT_BYTES;
    else process.env.QUANTBOOK_MAX_OUTPUT_BYTES = saved;
    rmSync(dir, { recursive: true, force: true });
  });

  it("imports quantbook, tfjs and danfo in a folder outside the checkout (runtime and type checker)", async () => {
    const r = await k.execute(
      'import * as qb from "quantbook";\nimport * as tf from "@tensorflow/tfjs";\nimport * as dfd from "danfojs-node";\nconst kept: number = 41;\nconst shape: number[] = tf.ones([2, 3]).shape;\n[typeof qb.prepare, typeof dfd.DataFrame, shape.join("x")].join(" ")',
    );
    assert.equal(r.status, "ok", JSON.stringify(r.outputs));
    assert.equal(valueOf(r), "'function function 2x3'");
    // and a wrong type is still caught: the checker sees quantbook's declarations
    const t = await k.execute("const s: string = qb.qint16;");
    assert.equal(only(t.outputs, "error")[0]?.ename, "TypeScriptError");
  });

  it("survives each crash case of the issue, and earlier variables stay", async () => {
    const cases: [string, RegExp][] = [
      ['const p = qb.io.loadTorch("nope.ckpt"); "started"', /unhandled promise rejection[\s\S]*nope\.ckpt/],
      [
        'async function late() { await new Promise((r) => setTimeout(r, 50)); throw new Error("late"); }\nlate(); console.log("cell done")',
        /unhandled promise rejection from cell \d+[\s\S]*Error: late/,
      ],
      [
        'setTimeout(() => { throw new Error("timer boom"); }, 10); "scheduled"',
        /uncaught exception from cell \d+[\s\S]*timer boom/,
      ],
    ];
    for (const [code, report] of cases) {
      const r = await k.execute(code);
      assert.equal(r.status, "ok", code);
      await sleep(200); // the error happens after the cell ended: it shows on the next cell
      const next = await k.execute("kept + 1");
      assert.equal(valueOf(next), "42", code);
      assert.match(streamText(next, "stderr"), report, code);
    }
    // while a cell runs, a background error is an error output on that cell; the cell goes on
    const during = await k.execute(
      'setTimeout(() => { throw new Error("during"); }, 10);\nawait new Promise((r) => setTimeout(r, 200));\n"finished"',
    );
    assert.equal(during.status, "ok");
    assert.equal(valueOf(during), "'finished'");
    assert.equal(only(during.outputs, "error")[0]?.evalue, "during");
    // a rejected promise as the last value fails that cell only
    const rej = await k.execute('Promise.reject(new Error("rejected value"))');
    assert.equal(rej.status, "error");
    assert.equal(only(rej.outputs, "error")[0].evalue, "rejected value");
    assert.equal(valueOf(await k.execute("kept + 1")), "42");
  });

  it("a failed cell keeps what it declared before the failing statement, with its type", async () => {
    const r = await k.execute(
      'const before1 = 123;\nlet counter = 1;\ncounter++;\nthrow new Error("x");\nconst notReached = 5;',
    );
    assert.equal(r.status, "error");
    assert.equal(valueOf(await k.execute("before1 + counter")), "125");
    const t = await k.execute("const wrong: string = before1;");
    assert.match(only(t.outputs, "error")[0].evalue, /not assignable to type 'string'/);
    const missing = await k.execute("notReached");
    assert.match(only(missing.outputs, "error")[0].evalue, /Cannot find name 'notReached'/);
  });

  it("tracebacks name cell lines, user frames first, library frames folded", async () => {
    const r = await k.execute(
      "function thrower(a: number) {\n  if (a > 1) {\n    throw new Error('deep ' + a);\n  }\n}\nthrower(3);",
    );
    const cell = r.executionCount;
    const tb = only(r.outputs, "error")[0].traceback;
    assert.equal(tb[0], "Error: deep 3");
    assert.equal(tb[1], `    at thrower (cell ${cell}, line 3)`);
    assert.equal(tb[2], `    at cell ${cell}, line 6`);
    const lib = await k.execute("\nqb.quant.fakeQuantize(tf.ones([2]), { scale: -1, dtype: qb.qint8 });");
    const ltb = only(lib.outputs, "error")[0].traceback;
    assert.equal(ltb[1], `    at cell ${lib.executionCount}, line 2`);
    assert.match(ltb[ltb.length - 1], /library frames?: quantbook ×\d+/);
    const diag = await k.execute("const ok1 = 1;\nconst bad: number = 'x';");
    assert.match(only(diag.outputs, "error")[0].evalue, new RegExp(`^cell ${diag.executionCount}, line 2:7 - `));
  });

  it("every one of 100,000 printed lines arrives, in order", async () => {
    const t0 = performance.now();
    const r = await k.execute('for (let i = 0; i < 100000; i++) console.log("line " + i);\nconsole.error("done");');
    const ms = performance.now() - t0;
    assert.equal(r.status, "ok");
    const lines = streamText(r).split("\n");
    assert.equal(lines.length, 100001);
    for (let i = 0; i < 100000; i++)
      if (lines[i] !== `line ${i}`) assert.fail(`line ${i} is ${JSON.stringify(lines[i])}`);
    assert.equal(streamText(r, "stderr"), "done\n");
    console.log(
      `# 100,000 console.log lines delivered in ${ms.toFixed(0)} ms in ${only(r.outputs, "stream").length} stream messages`,
    );
    assert.ok(ms < 60000, `100,000 lines took ${ms} ms (generous bound: 60 s)`);
  });

  it("a cell printing past the cap gets the cap's worth and a note", async () => {
    const r = await k.execute(
      `const chunk = "x".repeat(999) + "\\n";\nfor (let i = 0; i < ${(OUTPUT_CAP / 1000) * 2}; i++) process.stdout.write(chunk);`,
    );
    assert.equal(r.status, "ok");
    assert.equal(Buffer.byteLength(streamText(r)), OUTPUT_CAP);
    assert.match(streamText(r, "stderr"), /output truncated — this cell printed 3\.8 MB; the first 1\.9 MB are shown/);
    assert.equal(valueOf(await k.execute("kept")), "41");
  });

  it("interrupt stops calibrate within a batch and leaves the model usable", async () => {
    const setup = await k.execute(
      'qb.setMarch(qb.March.NASH_M);\nconst m = new qb.examples.SmallModel();\nconst x = tf.randomNormal([1, 4, 6, 256], 0, 1, "float32", 7);\nconst calib = qb.prepare(m.eval(), x, { qconfigSetter: [qb.qconfig.calibration8bitWeight16bitActQconfigSetter] });\nqb.setFakeQuantize(calib, qb.FakeQuantState.CALIBRATION);\nlet batchesSeen = 0;',
    );
    assert.equal(setup.status, "ok", JSON.stringify(setup.outputs));
    const r = await interruptUntilDone(
      k.execute(
        "await qb.calibrate(calib, Array.from({ length: 100000 }, () => x), { onProgress: (p) => (batchesSeen = p.done) });",
      ),
      () => k.interruptByMessage(),
    );
    assert.equal(r.status, "error");
    const err = only(r.outputs, "error")[0];
    assert.match(`${err.ename}: ${err.evalue}`, /InterruptedError: calibrate: interrupted/);
    const seen = Number(valueOf(await k.execute("batchesSeen")));
    assert.ok(seen > 0 && seen < 100000, `batches seen: ${seen}`);
    await sleep(300);
    assert.equal(Number(valueOf(await k.execute("batchesSeen"))), seen, "no batch ran after the interrupt");
    const after = await k.execute(
      "qb.setFakeQuantize(calib, qb.FakeQuantState.VALIDATION);\ncalib.forward(x).shape.join('x')",
    );
    assert.equal(valueOf(after), "'1x4x6x60'");
  });

  it("interrupt stops sensitivity within an op", async () => {
    const r = await interruptUntilDone(
      k.execute(
        "const qa = new qb.analysis.QuantAnalysis(m, calib);\nlet rowsSeen = 0;\nfor (let i = 0; i < 1000; i++) qa.sensitivity({ data: x, onProgress: (p) => (rowsSeen = p.done) });",
      ),
      () => k.interruptByMessage(),
      500,
    );
    assert.equal(r.status, "error");
    assert.match(only(r.outputs, "error")[0].evalue, /sensitivity: interrupted/);
    // the model is as it was: its validation output is the same as before
    const again = await k.execute("calib.forward(x).shape.join('x')");
    assert.equal(valueOf(again), "'1x4x6x60'");
  });

  it("re-running a prepare-and-calibrate cell keeps tf.memory().numTensors flat", async () => {
    const cell =
      "const rerun = qb.prepare(m.eval(), x, { qconfigSetter: [qb.qconfig.calibration8bitWeight16bitActQconfigSetter] });\nqb.setFakeQuantize(rerun, qb.FakeQuantState.CALIBRATION);\nawait qb.calibrate(rerun, [x]);";
    const counts: number[] = [];
    for (let i = 0; i < 6; i++) {
      assert.equal((await k.execute(cell)).status, "ok");
      await sleep(50); // finalizers run after the collection
      counts.push(Number(valueOf(await k.execute("tf.memory().numTensors"))));
    }
    console.log(`# numTensors after each of 6 runs of a prepare + calibrate cell: ${counts.join(", ")}`);
    assert.ok(counts[5] <= counts[1], `numTensors after each run: ${counts.join(", ")}`);
  });

  it("interrupt_request stops a synchronous loop and is answered", async () => {
    let replies = 0;
    const r = await interruptUntilDone(k.execute("while (true) {}"), async () => {
      const rep = await k.interruptByMessage();
      if ((rep.content as { status: string }).status === "ok") replies++;
    });
    assert.ok(replies >= 1);
    assert.equal(only(r.outputs, "error")[0].ename, "KeyboardInterrupt");
    assert.equal(valueOf(await k.execute("kept")), "41");
  });

  it("output of work an interrupted cell left running lands on the running cell with a note", async () => {
    const r = await interruptUntilDone(
      k.execute(
        "let ticks = 0;\nwhile (true) {\n  await new Promise((r) => setTimeout(r, 20));\n  if (++ticks % 5 === 0) console.log('tick ' + ticks);\n}",
      ),
      () => k.interruptByMessage(),
    );
    assert.equal(only(r.outputs, "error")[0].ename, "KeyboardInterrupt");
    const next = await k.execute("await new Promise((r) => setTimeout(r, 300));\nconsole.log('own line');");
    const text = streamText(next);
    assert.match(text, new RegExp(`\\[output of cell ${r.executionCount}, from work it left running\\]\\ntick \\d+`));
    // the background ticks came first, so the cell's own line comes under its own marker
    assert.match(text, new RegExp(`\\[cell ${next.executionCount}\\]\\nown line\\n$`));
  });

  it("warns about an un-awaited quantbook call, and the model says it is busy", async () => {
    const r = await k.execute(
      "qb.setFakeQuantize(calib, qb.FakeQuantState.CALIBRATION);\nqb.calibrate(calib, Array.from({ length: 200 }, () => x));\nconsole.log('started');",
    );
    assert.equal(r.status, "ok", JSON.stringify(r.outputs));
    assert.match(
      streamText(r, "stderr"),
      /qb\.calibrate\(\.\.\.\) started in this cell is still running[\s\S]*await qb\.calibrate/,
    );
    const use = await k.execute("qb.setFakeQuantize(calib, qb.FakeQuantState.VALIDATION);");
    assert.match(only(use.outputs, "error")[0].evalue, /qb\.calibrate is still running on this model[\s\S]*await/);
    await k.interruptByMessage();
    // the same mistake inside one cell: the second call says what is wrong
    await sleep(300);
    const same = await k.execute(
      "qb.setFakeQuantize(calib, qb.FakeQuantState.CALIBRATION);\nqb.calibrate(calib, [x, x]);\nqb.setFakeQuantize(calib, qb.FakeQuantState.VALIDATION);",
    );
    assert.match(
      only(same.outputs, "error")[0].evalue,
      /setFakeQuantize: qb\.calibrate is still running on this model/,
    );
    // a promise as the last value is awaited, so this form needs no await
    const last = await k.execute(
      "await new Promise((r) => setTimeout(r, 100));\nqb.setFakeQuantize(calib, qb.FakeQuantState.CALIBRATION);\nqb.calibrate(calib, [x])",
    );
    assert.match(valueOf(last), /batches: 1/);
  });
});
