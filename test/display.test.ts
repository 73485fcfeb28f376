import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import * as qb from "../src";
import { toMimeBundle, type MimeBundle } from "../src/display/mime";
import { notebookHtml } from "../cli/notebookHtml";
import { calibrated, setup } from "./helpers";

const html = (b: MimeBundle | null) => String(b?.["text/html"] ?? "");

describe("rich display", () => {
  before(setup);

  it("danfo DataFrames: escaped HTML with shape, head and tail rows, plus text", async () => {
    const rows = Array.from({ length: 40 }, (_, i) => ({
      op: i === 0 ? "<script>alert(1)</script>" : `op${i}`,
      L1: i / 10,
    }));
    const b = await toMimeBundle(qb.display.toDataFrame(rows));
    assert.ok(html(b).includes("&lt;script&gt;alert(1)&lt;/script&gt;"), "cells are escaped");
    assert.ok(!html(b).includes("<script>"));
    assert.match(html(b), /40 rows × 2 columns/);
    assert.match(html(b), /op19</);
    assert.doesNotMatch(html(b), /op20</, "the middle is elided");
    assert.match(html(b), /op39</);
    assert.match(String(b?.["text/plain"]), /40 rows × 2 columns/);
  });

  it("quantbook results display as what they are: both statistics tables, per-layer table, check report, integer model, quoted strings", async () => {
    qb.setMarch(qb.March.NASH_M);
    const m = new qb.examples.SmallModel();
    const x = tf.randomNormal([1, 3, 4, 256], 0, 1, "float32", 3);
    const calib = await calibrated(m, x, [qb.qconfig.calibration8bitWeight16bitActQconfigSetter]);
    const qa = new qb.analysis.QuantAnalysis(m, calib);
    const stats = await toMimeBundle(qa.statistics({ data: x }));
    assert.match(html(stats), /<h4>baseline<\/h4>[\s\S]*Statistics of the baseline[\s\S]*<h4>analysis<\/h4>/);
    assert.match(String(stats?.["text/plain"]), /^baseline:\n[\s\S]*\n\nanalysis:\n/);
    // a column named "shape" must not hide the frame's size (danfo exposes columns as properties)
    const cpl = await toMimeBundle(qa.comparePerLayer({ data: x }));
    const ops = qb.analysis.preparedOps(calib).length;
    assert.match(
      String(cpl?.["text/plain"]),
      new RegExp(`^Per-layer comparison: baseline vs analysis outputs \\(${ops} rows × 16 columns\\)`),
    );
    const check = await toMimeBundle(qb.analysis.modelCheckResult(calib));
    assert.match(
      String(check?.["text/plain"]),
      new RegExp(`^Model check of ${ops} ops: .*\\nFloat inputs not behind a QuantStub`),
    );
    assert.match(html(check), /<pre>Float inputs/);
    const hb = await toMimeBundle(qb.convert(qb.export(calib, x), qb.March.NASH_M));
    assert.match(
      String(hb?.["text/plain"]),
      /^Integer model for nash-m: \d+ nodes, input \[1, 3, 4, 256\], output dequant\nops: QuantStub ×1, Linear ×3/,
    );
    assert.equal((await toMimeBundle("ab"))?.["text/plain"], "'ab'");
    // one protocol: every result carries the display symbol itself (no shape-sniffing in display)
    const D = Symbol.for("Jupyter.display");
    const results: [string, unknown][] = [
      ["quantSummary", qb.analysis.quantSummary(calib)],
      ["statistics", qa.statistics({ data: x })],
      ["sensitivity", qa.sensitivity({ data: x, onProgress: () => {} })],
      ["checkModel", qb.march.checkModel(calib, qb.March.NASH_M)],
      ["perf", qb.march.perf(qb.export(calib, x), qb.March.NASH_M)],
      ["modelCheckResult", qb.analysis.modelCheckResult(calib)],
      ["HbModel", qb.convert(qb.export(calib, x), qb.March.NASH_M)],
      ["Module", m],
      ["scaleExplorer", qb.analysis.scaleExplorer(calib, "linear2", { data: x })],
    ];
    for (const [name, r] of results) {
      assert.equal(typeof (r as Record<symbol, unknown>)[D], "function", `${name} implements the display protocol`);
    }
    // a look-alike without the symbol is plain data, shown by inspect()
    const lookAlike = await toMimeBundle({ caption: "c", text: "t" });
    assert.equal(lookAlike?.["text/plain"], "{ caption: 'c', text: 't' }");
    assert.equal(lookAlike?.["text/html"], undefined);
    x.dispose();
  });

  it("a result table draws itself (the display protocol): its text view is its caption and its .text, and its DataFrame shows the same cells", async () => {
    const sd = (await qb.io.loadTorch(require("./helpers").fixture("float-checkpoint.ckpt"))) as Record<
      string,
      tf.Tensor
    >;
    const x = (await qb.io.loadTorch(require("./helpers").fixture("random_data.pt"))) as tf.Tensor;
    const model = new qb.examples.SmallModel();
    model.loadStateDict(sd);
    const c = await calibrated(model.eval(), x, [qb.qconfig.calibration8bitWeight16bitActQconfigSetter]);
    const table = new qb.analysis.QuantAnalysis(model, c).sensitivity({ data: x, onProgress: () => {} });
    const direct = (await toMimeBundle(table)) as MimeBundle;
    assert.equal(typeof (table as unknown as Record<symbol, unknown>)[Symbol.for("Jupyter.display")], "function");
    // one cell formatter: the notebook's text view is the caption line, then .text itself
    assert.equal(
      direct["text/plain"],
      `${table.caption} (${table.rows.length} rows × 6 columns)\n${table.text}`,
      "text/plain = caption + .text",
    );
    const viaDanfo = (await toMimeBundle(table.toDataFrame())) as MimeBundle;
    const body = (b: MimeBundle) => String(b["text/plain"]).split("\n").slice(1).join("\n");
    assert.equal(body(viaDanfo), body(direct), "the DataFrame shows the same cells");
    qb.io.disposeAll(sd);
    x.dispose();
    c.dispose();
    model.dispose();
  });

  it("tensors show shape, dtype and a bounded preview (small 2-D ones also as a table); models their module tree", async () => {
    const small = tf.tensor2d([
      [1, 2],
      [3, 4],
    ]);
    const b = await toMimeBundle(small);
    assert.match(String(b?.["text/plain"]), /^Tensor float32 \[2,2\]\n/);
    assert.match(html(b), /<caption>Tensor float32 \[2,2\]<\/caption>/);
    const big = tf.range(0, 5000);
    const text = String((await toMimeBundle(big))?.["text/plain"]);
    assert.match(text, /^Tensor float32 \[5000\], 5000 values: min 0, max 4999, mean 2499\.50\nfirst values: 0, 1, 2/);
    assert.ok(text.length < 300, "bounded");
    const before = tf.memory().numTensors;
    await toMimeBundle(big);
    assert.equal(tf.memory().numTensors, before, "no tensors left behind");
    qb.setMarch(qb.March.NASH_M);
    const m = new qb.examples.SmallModel();
    const x = tf.randomNormal([1, 2, 3, 256]);
    const tree = String(
      (
        await toMimeBundle(
          qb.prepare(m.eval(), x, { qconfigSetter: [qb.qconfig.calibration8bitWeight16bitActQconfigSetter] }),
        )
      )?.["text/plain"],
    );
    assert.match(
      tree,
      /^SmallModel: \d+ modules, \d+ parameter tensors \(\d+ values\), 15 quantized ops \(prepared\)\n\(root\): SmallModel/,
    );
    assert.match(tree, /\n  linear2: Linear, 15420 parameters, 1 op\n/);
    assert.match(tree, /\n  layernorm: LayerNorm, 512 parameters, \d+ ops/);
    tf.dispose([small, big, x]);
    m.dispose();
  });

  it("the display protocol symbol wins, and a bad return value is a clear error", async () => {
    const b = await toMimeBundle({ [Symbol.for("Jupyter.display")]: () => ({ "text/markdown": "**x**" }) });
    assert.deepEqual(b, { "text/markdown": "**x**" });
    await assert.rejects(
      () => toMimeBundle({ [Symbol.for("Jupyter.display")]: () => 5 }),
      /method returned no object; return a MIME bundle/,
    );
    assert.equal(await toMimeBundle(undefined), null);
  });

  it("every plot builder gives a Vega-Lite spec that renders to SVG", async () => {
    const w = tf.tensor2d([
      [1, -2, 40],
      [0.5, 0.1, -0.2],
    ]);
    const specs = [
      qb.plots.histogram([1, 2, 3, 3], { logCount: true }),
      qb.plots.zeroBandHistogram([1e-4, 2e-3, 5, -300], 0.01),
      qb.plots.scaleSweepChart([
        { setting: "MSE", scale: 0.01, zero_fraction: 0.9, output_l1: 0.08 },
        { setting: "fixed", scale: 2e-4, zero_fraction: 0.04, output_l1: 8e-4 },
      ]),
      qb.plots.sensitivityBars([{ op_name: "linear2", sensitive_type: "weight", value: 0.02 }]),
      qb.plots.weightQuantErrorChart(qb.analysis.weightQuantError(w)),
      qb.plots.latencyBars([{ config: "a", latencyMs: 0.07 }]),
      qb.plots.accuracyVsLatency([{ config: "a", latencyMs: 0.07, error: 0.02 }]),
      qb.plots.outputScatter([1, 2, 3], [1.1, 2, 2.9]),
    ];
    for (const spec of specs) {
      const b = await toMimeBundle(spec);
      assert.ok(b?.["application/vnd.vegalite.v5+json"], "spec");
      assert.match(String(b?.["image/svg+xml"]), /^<svg[\s\S]*<\/svg>$/);
      assert.match(String(b?.["text/plain"]), /^<Vega-Lite/);
    }
    // the analysis computes, the plot draws: row 1 of w, int8 per channel, by hand (scale = absmax / 127.5,
    // half to even, saturated: 0.5 → code 127, 0.1 → 25.5 → 26, -0.2 → -51)
    const rows = qb.analysis.weightQuantError(w);
    const s = 0.5 / 127.5;
    const q = [127, 26, -51].map((c) => c * s);
    const rmse = Math.sqrt(((q[0] - 0.5) ** 2 + (q[1] - 0.1) ** 2 + (q[2] + 0.2) ** 2) / 3);
    const got = rows.find((r) => r.channel === 1 && r.scheme === "int8 per channel")?.rmse as number;
    assert.ok(Math.abs(got - rmse) <= 1e-4 * rmse, `${got} vs ${rmse} (float32 arithmetic)`);
    assert.throws(
      () => qb.plots.weightQuantErrorChart(w as unknown as []),
      /pass qb\.analysis\.weightQuantError\(weight\)/,
    );
    w.dispose();
  });

  it("quantbook results get captions; tensors and records a readable form", async () => {
    const check = qb.march.checkModel(
      {
        format: "quantbook-ir",
        version: 1,
        march: "nash-m",
        inputs: [],
        outputs: [],
        nodes: [],
      } as unknown as qb.march.Ir,
      qb.March.NASH_M,
    );
    assert.match(
      String((await toMimeBundle(check))?.["text/plain"]),
      /Chip rules nash-m: every op passes \(0 ops checked\)/,
    );
    const t = tf.tensor([1, 2, 3]);
    assert.match(String((await toMimeBundle(t))?.["text/plain"]), /^Tensor float32 \[3\]/);
    t.dispose();
    assert.match(html(await toMimeBundle([{ a: 1, b: "<b>" }])), /&lt;b&gt;/);
  });

  it("renders a notebook to static HTML with plots and tables", async () => {
    const spec = await toMimeBundle(qb.plots.histogram([1, 2, 3]));
    const page = notebookHtml(
      {
        nbformat: 4,
        nbformat_minor: 5,
        metadata: {},
        cells: [
          { cell_type: "markdown", source: ["# Title\n", "Some *prose*."] },
          {
            cell_type: "code",
            source: "1",
            execution_count: 1,
            outputs: [
              { output_type: "display_data", data: spec as Record<string, unknown> },
              { output_type: "error", ename: "Error", evalue: "x<y", traceback: ["Error: x<y"] },
            ],
          },
        ],
      },
      "t",
    );
    assert.match(page, /<h1[^>]*>Title<\/h1>/);
    assert.match(page, /<em>prose<\/em>/);
    // the chart: its SVG as the fallback, its spec for vega-embed (script-safe JSON), no scripts asked for
    assert.match(
      page,
      /<div class="qb-plot qb-chart" data-qb-chart="0" data-qb-mode="vega-lite"><div class="qb-fallback"><svg/,
    );
    assert.match(page, /<script type="application\/json" id="qb-chart-0">\{"\$schema"/);
    assert.doesNotMatch(page, /vendor\//);
    assert.match(page, /x&lt;y/);
    // a string in a spec cannot close the script element it sits in
    const hostile = notebookHtml(
      {
        nbformat: 4,
        nbformat_minor: 5,
        metadata: {},
        cells: [
          {
            cell_type: "code",
            source: "",
            outputs: [
              {
                output_type: "display_data",
                data: { "application/vnd.vegalite.v5+json": { title: "</script><script>alert(1)</script>" } },
              },
            ],
          },
        ],
      },
      "t",
      "",
      { kind: "beside", prefix: "vendor/" },
    );
    assert.doesNotMatch(hostile, /<\/script><script>alert/);
    assert.match(hostile, /\\u003c\/script>\\u003cscript>alert/);
    assert.match(hostile, /src="vendor\/vega-embed\.min\.js"/);
  });
});
