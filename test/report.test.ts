/**
 * `quantbook report`: a user's notebooks (outside the checkout) rendered as saved and executed,
 * argument and notebook errors, and the static pages in headless Chromium with the network cut:
 * vega-embed draws the charts, a tooltip appears on hover, the scale slider moves the numbers,
 * an inlined page works alone, a page without its scripts keeps the SVG.
 */
import assert from "node:assert/strict";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import * as qb from "../src";
import { toMimeBundle } from "../src/display/mime";
import { highlightTs, type NbCell, type NbCellOutput, type Notebook } from "../cli/notebookHtml";
import { collectNotebooks, report, reportCommand, ReportError } from "../cli/report";
import { run as cliRun } from "../cli/main";
import { assertThrows, setup } from "./helpers";

const CHROMIUM = "/usr/bin/chromium";
const png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==";
const quiet = () => undefined;

const notebook = (cells: Notebook["cells"]): Notebook => ({
  nbformat: 4,
  nbformat_minor: 5,
  metadata: { kernelspec: { name: "quantbook", display_name: "TypeScript (quantbook)" } },
  cells,
});
const code = (source: string, outputs: NbCellOutput[] = []): NbCell => ({
  cell_type: "code",
  source,
  execution_count: 1,
  outputs,
});

// scale explorer rows over a log-uniform sweep: zero fraction and error grow with the scale
const sweepRows = [
  { setting: "MSEObserver", scale: 1e-2, zero_fraction: 0.95, output_l1: 0.05 },
  ...Array.from({ length: 11 }, (_, k) => {
    const scale = 10 ** (-4 + 0.2 * k);
    return { setting: `sweep ${scale.toPrecision(4)}`, scale, zero_fraction: k / 10, output_l1: 1e-4 * 2 ** k };
  }),
];

describe("quantbook report", { timeout: 300000 }, () => {
  let dir = "";
  let out = "";
  before(async () => {
    await setup();
    dir = mkdtempSync(path.join(tmpdir(), "qb-report-"));
    out = path.join(dir, "site");
    mkdirSync(path.join(dir, "team", "alice"), { recursive: true });
    mkdirSync(path.join(dir, "team", "bob"), { recursive: true });
    mkdirSync(path.join(dir, "team", ".ipynb_checkpoints"), { recursive: true });
    const bars = await toMimeBundle(
      qb.plots.sensitivityBars([
        { op_name: "linear2", sensitive_type: "weight", value: 0.5 },
        { op_name: "linear1", sensitive_type: "activation", value: 0.125 },
      ]),
    );
    const table = await toMimeBundle(qb.display.toDataFrame([{ op: "linear2", L1: 0.5 }]));
    const slider = await toMimeBundle(
      qb.plots.scaleSweepChart(sweepRows, {
        values: Array.from({ length: 500 }, (_, i) => Math.sin(i) * 10 ** (-6 + (i % 7))),
      }),
    );
    // a 1×1 PNG beside the notebook and one pasted into a cell
    writeFileSync(path.join(dir, "team", "alice", "fig.png"), Buffer.from(png, "base64"));
    const saved = notebook([
      { cell_type: "markdown", source: "# Findings\nThe weight of `linear2` is the sensitive one." },
      {
        cell_type: "markdown",
        source: "![beside](fig.png) ![pasted](attachment:p.png) ![gone](missing.png)",
        attachments: { "p.png": { "image/png": png } },
      },
      code("sensitivity", [
        { output_type: "display_data", data: bars ?? {} },
        { output_type: "execute_result", data: table ?? {} },
      ]),
      code("explorer", [{ output_type: "display_data", data: slider ?? {} }]),
    ]);
    writeFileSync(path.join(dir, "team", "alice", "findings.ipynb"), JSON.stringify(saved));
    writeFileSync(path.join(dir, "team", "bob", "findings.ipynb"), JSON.stringify(saved));
    writeFileSync(path.join(dir, "team", ".ipynb_checkpoints", "findings-checkpoint.ipynb"), JSON.stringify(saved));
    writeFileSync(path.join(dir, "team", "broken.ipynb"), "{ not json");
    writeFileSync(
      path.join(dir, "team", "odd.ipynb"),
      JSON.stringify(
        notebook([
          code("1", [{ output_type: "stream", name: "stdout", text: "x" }]),
          { cell_type: "code", source: 5 } as unknown as NbCell,
        ]),
      ),
    );
  });
  after(() => (process.env.QB_KEEP ? console.log(`# kept ${dir}`) : rmSync(dir, { recursive: true, force: true })));

  it("renders a folder of notebooks as saved: index, a page each, charts with SVG fallback, vendor scripts", async () => {
    const logs: string[] = [];
    const exit = await reportCommand(
      [path.join(dir, "team"), "--out", out],
      (s) => logs.push(s),
      (s) => logs.push(s),
    );
    assert.equal(exit, 1, "the broken notebook fails the run");
    const index = readFileSync(path.join(out, "index.html"), "utf8");
    // same file name in two folders: pages named by folder; checkpoints skipped
    assert.match(index, /href="alice-findings\.html"/);
    assert.match(index, /href="bob-findings\.html"/);
    assert.doesNotMatch(index, /checkpoint/);
    assert.match(index, /broken[\s\S]*failed: .*broken\.ipynb: not a notebook/);
    assert.match(index, /odd[\s\S]*failed: .*odd\.ipynb: cell 2: its source is not text/);
    const page = readFileSync(path.join(out, "alice-findings.html"), "utf8");
    assert.match(page, /<h1[^>]*>Findings<\/h1>/);
    assert.equal((page.match(/data-qb-chart="/g) ?? []).length, 2);
    assert.match(page, /<div class="qb-fallback"><svg/, "the SVG stays as the fallback");
    assert.match(page, /<script type="application\/json" id="qb-chart-0">\{"\$schema"/);
    assert.match(page, /<table/);
    // images that would break once the page moves are embedded; others keep their address
    assert.match(page, new RegExp(`<img src="data:image/png;base64,${png.slice(0, 20)}[^"]*" alt="beside"`));
    assert.match(page, /<img src="data:image\/png;base64,[^"]+" alt="pasted"/);
    assert.match(page, /<img src="missing\.png" alt="gone"/);
    assert.match(page, /src="vendor\/vega-embed\.min\.js"/);
    assert.doesNotMatch(page, /(src|href)="https?:/, "nothing loads from the network");
    for (const f of ["vega.min.js", "vega-lite.min.js", "vega-embed.min.js"])
      assert.ok(existsSync(path.join(out, "vendor", f)), f);
    assert.ok(
      logs.some((l) => /report: 2\/4 notebooks ok/.test(l)),
      logs.join("\n"),
    );
  });

  it("highlights code offline: comments, strings, numbers and keywords marked, every character kept and escaped", () => {
    const src =
      'const x = qb.tf.ones([2, 3]); // a <tensor>\nif (a < 1e-3 && b !== "s\\"t") { return `t${x}`; }\n/* block\n comment */ await f(\'q\');';
    const html = highlightTs(src);
    const text = html
      .replace(/<span class="qb-[cksn]">/g, "")
      .replace(/<\/span>/g, "")
      .replace(/&lt;/g, "<")
      .replace(/&gt;/g, ">")
      .replace(/&quot;/g, '"')
      .replace(/&#39;/g, "'")
      .replace(/&amp;/g, "&");
    assert.equal(text, src);
    assert.ok(!/<(?!\/?span)/.test(html), "no raw < outside the spans");
    for (const [cls, word] of [
      ["qb-k", "const"],
      ["qb-k", "await"],
      ["qb-c", "// a &lt;tensor&gt;"],
      ["qb-n", "1e-3"],
      ["qb-s", "`t${x}`"],
    ])
      assert.ok(html.includes(`<span class="${cls}">${word}</span>`), `${cls} ${word}: ${html}`);
  });

  it("refuses bad arguments with the path and what was expected", async () => {
    await assertThrows(() => reportCommand([path.join(dir, "nope")], quiet, quiet), /nope: no such file or folder/);
    writeFileSync(path.join(dir, "notes.txt"), "x");
    await assertThrows(
      () => reportCommand([path.join(dir, "notes.txt")], quiet, quiet),
      /notes\.txt: not a notebook \(expected a \.ipynb file or a folder/,
    );
    mkdirSync(path.join(dir, "empty"), { recursive: true });
    await assertThrows(
      () => reportCommand([path.join(dir, "empty")], quiet, quiet),
      /empty: the folder has no notebooks/,
    );
    await assertThrows(() => reportCommand(["--out"], quiet, quiet), /--out needs a value/);
    await assertThrows(
      () => reportCommand(["--frobnicate", dir], quiet, quiet),
      /unknown option --frobnicate/,
      /usage: quantbook report/,
    );
    await assertThrows(
      () => reportCommand([dir, "--timeout", "soon"], quiet, quiet),
      /--timeout soon: expected a number of seconds/,
    );
    assert.throws(() => collectNotebooks([], out), ReportError);
    assert.equal(await cliRun(["frobnicate"]), 2);
  });

  it("--execute runs a user's notebook on a fresh kernel in its own folder; a failing cell stops it, --allow-errors goes on", async () => {
    const work = path.join(dir, "exec");
    mkdirSync(work, { recursive: true });
    writeFileSync(path.join(work, "data.json"), JSON.stringify({ values: [0.5, -1.5, 2.25] }));
    const cells = [
      code(
        'import * as qb from "quantbook";\nimport { readFileSync } from "fs";\nconst v: number[] = JSON.parse(readFileSync("data.json", "utf8")).values;\nconsole.log("sum", v.reduce((a, b) => a + b, 0));',
      ),
      code("qb.plots.histogram(v, { bins: 3 })"),
      code('throw new Error("on purpose");'),
      code('console.log("after the error");'),
    ];
    writeFileSync(path.join(work, "mine.ipynb"), JSON.stringify(notebook(cells)));
    const stop = await report([path.join(work, "mine.ipynb")], { execute: true, out: path.join(dir, "site-exec") });
    const [r] = stop.runs;
    assert.equal(r.ok, false);
    assert.match(r.error ?? "", /cell 3: Error: on purpose/);
    assert.equal(r.cells, 3, "the cell after the error is not run");
    const nb = JSON.parse(readFileSync(path.join(dir, "site-exec", "notebooks", "mine.ipynb"), "utf8")) as Notebook;
    assert.match(JSON.stringify(nb.cells[0].outputs), /sum 1\.25/);
    assert.ok(
      nb.cells[1].outputs?.some((o) => o.data?.["application/vnd.vegalite.v5+json"]),
      "the plot is in the executed notebook",
    );
    assert.deepEqual(nb.cells[3].outputs, [], "no stale outputs on cells that did not run");
    assert.equal(
      JSON.parse(readFileSync(path.join(work, "mine.ipynb"), "utf8")).cells[0].outputs.length,
      0,
      "the user's file is not touched",
    );

    // a Python notebook is not run on the quantbook kernel: listed as failed, rendered as saved
    const py = {
      ...notebook([code("print(1)", [{ output_type: "stream", name: "stdout", text: "1\n" }])]),
      metadata: { kernelspec: { name: "python3", display_name: "Python 3" } },
    };
    writeFileSync(path.join(work, "py.ipynb"), JSON.stringify(py));
    const foreign = await report([path.join(work, "py.ipynb")], { execute: true, out: path.join(dir, "site-py") });
    assert.equal(foreign.runs[0].ok, false);
    assert.match(
      foreign.runs[0].error ?? "",
      /py\.ipynb is a 'Python 3' notebook; --execute runs notebooks on the quantbook kernel only/,
    );
    assert.match(readFileSync(path.join(dir, "site-py", "py.html"), "utf8"), /qb-stdout">1\n</);

    const goOn = await report([path.join(work, "mine.ipynb")], {
      execute: true,
      allowErrors: true,
      out: path.join(dir, "site-exec2"),
    });
    assert.equal(goOn.runs[0].cells, 4);
    const nb2 = JSON.parse(readFileSync(path.join(dir, "site-exec2", "notebooks", "mine.ipynb"), "utf8")) as Notebook;
    assert.match(JSON.stringify(nb2.cells[3].outputs), /after the error/);
    assert.match(readFileSync(path.join(dir, "site-exec2", "mine.html"), "utf8"), /qb-error[^>]*>Error: on purpose/);
  });

  it(
    "pages in headless Chromium, offline: charts drawn by vega-embed, tooltip on hover, the slider moves the numbers",
    { skip: existsSync(CHROMIUM) ? false : `${CHROMIUM} is not installed (apt-get install chromium)` },
    async () => {
      // the site as the first test writes it, an inlined copy moved alone to another folder, and a page whose vendor folder is gone
      await report([path.join(dir, "team", "alice"), path.join(dir, "team", "bob")], { out });
      await report([path.join(dir, "team", "alice", "findings.ipynb")], {
        inline: true,
        out: path.join(dir, "site-inline"),
      });
      const alone = path.join(dir, "alone");
      mkdirSync(alone, { recursive: true });
      copyFileSync(path.join(dir, "site-inline", "findings.html"), path.join(alone, "findings.html"));
      const bare = path.join(dir, "bare");
      mkdirSync(bare, { recursive: true });
      copyFileSync(path.join(out, "alice-findings.html"), path.join(bare, "findings.html"));

      const { chromium } = require("playwright-core") as typeof import("playwright-core");
      const browser = await chromium.launch({
        executablePath: CHROMIUM,
        args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
      });
      try {
        const context = await browser.newContext({ viewport: { width: 1100, height: 900 } });
        const requests: string[] = [];
        await context.route("**/*", (route) => {
          const url = route.request().url();
          if (url.startsWith("file://")) return route.continue();
          requests.push(url);
          return route.abort();
        });
        const page = await context.newPage();
        const errors: string[] = [];
        page.on("pageerror", (e) => errors.push(e.message));
        const charts = async (file: string) => {
          await page.goto(`file://${file}`);
          await page.waitForFunction("window.qbCharts && window.qbCharts.done", undefined, { timeout: 30000 });
          return (await page.evaluate(
            "({ live: qbCharts.live, failed: qbCharts.failed, errors: qbCharts.errors, missing: !!qbCharts.missing })",
          )) as {
            live: number;
            failed: number;
            errors: string[];
            missing: boolean;
          };
        };

        assert.deepEqual(await charts(path.join(out, "alice-findings.html")), {
          live: 2,
          failed: 0,
          errors: [],
          missing: false,
        });
        assert.equal(
          await page.locator(".qb-chart.qb-live .qb-live-chart svg").count(),
          2,
          "vega-embed drew both charts",
        );
        assert.equal(
          await page.locator(".qb-fallback").first().isVisible(),
          false,
          "the SVG fallback is hidden once the chart is live",
        );

        // tooltip on a sensitivity bar
        await page.locator(".qb-live-chart").first().locator(".mark-rect path").first().hover();
        const tooltip = page.locator("#vg-tooltip-element");
        await tooltip.waitFor({ state: "visible", timeout: 5000 });
        const text = await tooltip.innerText();
        assert.match(text, /linear2 \(weight\)/);
        assert.match(text, /0\.5/);

        // the scale slider: the summary line follows the nearest explored scale
        const summary = () =>
          page.locator(".qb-chart").nth(1).locator(".qb-live-chart .mark-text text").first().textContent();
        assert.match(
          (await summary()) ?? "",
          /scale 1\.000e-2 \(MSEObserver\): 95\.0% of nonzero values round to 0, model output L1 5\.000e-2/,
        );
        await page.locator(".qb-chart").nth(1).locator("input[type=range]").fill("-4");
        await page.waitForFunction(
          `document.querySelectorAll('.qb-chart')[1].querySelector('.qb-live-chart .mark-text text').textContent.includes('1.000e-4')`,
          undefined,
          {
            timeout: 10000,
          },
        );
        assert.match(
          (await summary()) ?? "",
          /scale 1\.000e-4 \(sweep 0\.0001000\): 0\.0% of nonzero values round to 0, model output L1 1\.000e-4/,
        );
        await page.locator(".qb-chart").nth(1).locator("input[type=range]").fill("-3");
        await page.waitForFunction(
          `document.querySelectorAll('.qb-chart')[1].querySelector('.qb-live-chart .mark-text text').textContent.includes('1.000e-3')`,
          undefined,
          {
            timeout: 10000,
          },
        );
        assert.match((await summary()) ?? "", /50\.0% of nonzero values round to 0, model output L1 3\.200e-3/);

        assert.deepEqual(
          await charts(path.join(alone, "findings.html")),
          { live: 2, failed: 0, errors: [], missing: false },
          "the inlined page works alone",
        );
        const fallback = await charts(path.join(bare, "findings.html"));
        assert.equal(fallback.missing, true);
        assert.equal(await page.locator(".qb-fallback svg").first().isVisible(), true, "without scripts the SVG shows");

        assert.deepEqual(requests, [], "no request left the machine");
        assert.deepEqual(errors, []);
      } finally {
        await browser.close();
      }
    },
  );
});
