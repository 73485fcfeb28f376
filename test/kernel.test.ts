/** The kernel through quantbook's Node client: results, errors, state that survives, interrupts. */
import assert from "node:assert/strict";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { KernelClient, type ExecuteResult, type NbOutput } from "../kernel/client";
import { kernelSpec } from "../kernel/main";

const NOTEBOOKS = path.join(__dirname, "..", "..", "notebooks");

function only<T extends NbOutput["output_type"]>(outs: NbOutput[], type: T): Extract<NbOutput, { output_type: T }>[] {
  return outs.filter((o) => o.output_type === type) as Extract<NbOutput, { output_type: T }>[];
}

describe("quantbook kernel", { timeout: 120000 }, () => {
  let k: KernelClient;
  before(async () => {
    k = await KernelClient.start(kernelSpec().argv as string[], NOTEBOOKS);
  });
  after(async () => {
    await k.shutdown();
  });

  it("returns the last expression as a rich execute_result", async () => {
    const r = await k.execute(
      'import * as qb from "quantbook";\nconst rows = [{ op: "linear2", L1: 0.02 }, { op: "linear3", L1: 0.004 }];\nrows',
    );
    assert.equal(r.status, "ok");
    const [res] = only(r.outputs, "execute_result");
    assert.match(String(res.data["text/html"]), /<table class="qb-table">.*linear2/);
    assert.match(String(res.data["text/plain"]), /linear3/);
  });

  it("shows a Vega-Lite spec as spec + SVG + text in one bundle", async () => {
    const r = await k.execute("qb.plots.histogram([1, 2, 2, 3, 3, 3], { bins: 3 })");
    const [res] = only(r.outputs, "execute_result");
    assert.ok(res.data["application/vnd.vegalite.v5+json"]);
    assert.equal(typeof res.data["application/vnd.vegalite.v5+json"], "object");
    assert.match(String(res.data["image/svg+xml"]), /^<svg/);
    assert.match(String(res.data["text/plain"]), /Vega-Lite bar chart/);
  });

  it("reports errors with ename, evalue and traceback, and keeps earlier variables", async () => {
    const a = await k.execute("const kept = 41;");
    assert.equal(a.status, "ok");
    const e = await k.execute('throw new RangeError("scale must be > 0")');
    assert.equal(e.status, "error");
    const [err] = only(e.outputs, "error");
    assert.equal(err.ename, "RangeError");
    assert.equal(err.evalue, "scale must be > 0");
    assert.match(err.traceback[0], /^RangeError: scale must be > 0/);
    const t = await k.execute("const n: number = 'text';");
    const [terr] = only(t.outputs, "error");
    assert.equal(terr.ename, "TypeScriptError");
    assert.match(terr.evalue, /not assignable to type 'number'/);
    const b = await k.execute("kept + 1");
    assert.equal(only(b.outputs, "execute_result")[0].data["text/plain"], "42");
  });

  it("aborts cells queued behind a failing one (stop_on_error), then runs new ones", async () => {
    // the first cell waits before failing, so the second request is surely queued behind it
    const [failed, queued] = await Promise.all([
      k.execute('await new Promise((r) => setTimeout(r, 500));\nthrow new Error("first")'),
      k.execute("'never runs'"),
    ]);
    assert.equal(failed.status, "error");
    assert.equal(queued.status, "aborted");
    assert.deepEqual(queued.outputs, []);
    const after = await k.execute("'runs'");
    assert.equal(after.status, "ok");
  });

  it("object shorthand works with earlier cells' variables", async () => {
    await k.execute("const shorty = 5;");
    const r = await k.execute("const o = { shorty, other: 1 };\n({ shorty }).shorty + o.shorty");
    assert.equal(r.status, "ok", JSON.stringify(r.outputs));
    assert.equal(only(r.outputs, "execute_result")[0].data["text/plain"], "10");
  });

  it("a quantbook error names the op and leaves the kernel alive", async () => {
    const r = await k.execute(
      "qb.quant.fakeQuantize(require('@tensorflow/tfjs').ones([2]), { scale: -1, dtype: qb.qint8 })",
    );
    const [err] = only(r.outputs, "error");
    assert.match(err.evalue, /fakeQuantize: scale\[0\] is -1/);
    const ok = await k.execute("1 + 1");
    assert.equal(ok.status, "ok");
  });

  it("a cell keeps public results in consts (every returned type can be named in the cell's declarations)", async () => {
    const r = await k.execute(
      [
        'import * as qbc from "quantbook";',
        "qbc.setMarch(qbc.March.NASH_M);",
        "const small = new qbc.examples.SmallModel().eval();",
        "const xs = qbc.tf.randomNormal([2, 4, 256], 0, 1, 'float32', 1);",
        "const prepared = qbc.prepare(small, xs, { qconfigSetter: [qbc.qconfig.defaultCalibrationQconfigSetter] });",
        "qbc.setFakeQuantize(prepared, qbc.FakeQuantState.CALIBRATION);",
        "const done = await qbc.calibrate(prepared, [xs], { onProgress: () => {} });",
        "qbc.setFakeQuantize(prepared, qbc.FakeQuantState.VALIDATION);",
        "const sum = qbc.analysis.quantSummary(prepared);",
        "const check = qbc.march.checkModel(prepared, qbc.March.NASH_M);",
        "const ir = qbc.export(prepared, xs);",
        "const hb = qbc.convert(ir, qbc.March.NASH_M);",
        "const est = qbc.march.perf(hb);",
        "const table = new qbc.analysis.QuantAnalysis(small, prepared).sensitivity({ data: xs, onProgress: () => {} });",
        "[done.batches, sum.rows.length > 0, check.ok, est.latencyMs > 0, table.rows.length].join(' ')",
      ].join("\n"),
    );
    assert.equal(r.status, "ok", JSON.stringify(r.outputs));
    const [res] = only(r.outputs, "execute_result");
    assert.match(String(res.data["text/plain"]), /1 true true true 16/);
  });

  it("streams console output and updates the progress display in place", async () => {
    const r = await k.execute(
      'console.log("before");\nconst p = qb.display.progress(0);\nfor (let i = 1; i <= 3; i++) p({ task: "demo", done: i, total: 3, elapsedMs: 0 });\nconsole.error("after");',
    );
    assert.deepEqual(
      only(r.outputs, "stream").map((s) => [s.name, s.text]),
      [
        ["stdout", "before\n"],
        ["stderr", "after\n"],
      ],
    );
    const displays = only(r.outputs, "display_data");
    assert.equal(displays.length, 1, "one progress output, updated in place");
    assert.equal(displays[0].data["text/plain"], "demo: 3/3 done");
  });

  it("is interrupted by interrupt_request (async cell) and by SIGINT (busy loop)", async () => {
    // interrupt until the cell ends: an interrupt that lands before the cell starts waiting is lost
    const until = async (cell: Promise<ExecuteResult>, interrupt: () => unknown): Promise<ExecuteResult> => {
      let done = false;
      void cell.then(() => (done = true));
      while (!done) {
        await new Promise((r) => setTimeout(r, 300));
        if (!done) await interrupt();
      }
      return cell;
    };
    let replyStatus = "";
    const r1 = await until(k.execute("await new Promise((r) => setTimeout(r, 60000));"), async () => {
      replyStatus = ((await k.interruptByMessage()).content as { status: string }).status;
    });
    assert.equal(replyStatus, "ok");
    assert.equal(r1.status, "error");
    const r2 = await until(k.execute("while (true) {}"), () => k.interruptBySignal());
    assert.equal(r2.status, "error");
    assert.match(only(r2.outputs, "error")[0].evalue, /interrupted/i);
    const alive = await k.execute("kept");
    assert.equal(only(alive.outputs, "execute_result")[0].data["text/plain"], "41");
  });
});
