/**
 * The main job: every notebook through the Node client on a fresh kernel, outputs checked, and
 * the static report opened in headless Chromium (interactive charts go live, plots and tables
 * render, no console errors).
 */
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { before, describe, it } from "node:test";
import type { Notebook } from "../cli/notebookHtml";
import { checkNotebooks } from "../scripts/notebooks";
import { REPORT, walkthrough, type NotebookRun } from "../scripts/walkthrough";
import { notebookProblems, type Expectation } from "./notebookChecks";

const ROOT = path.join(__dirname, "..", "..");
const CHROMIUM = "/usr/bin/chromium";
const expectations = JSON.parse(readFileSync(path.join(ROOT, "test", "notebook_expectations.json"), "utf8")) as Record<
  string,
  Expectation
>;

describe("walkthrough and report", { timeout: 600000 }, () => {
  let runs: NotebookRun[] = [];
  before(async () => {
    const t0 = performance.now();
    runs = await walkthrough();
    console.log(
      `# walkthrough: ${runs.length} notebooks in ${((performance.now() - t0) / 1000).toFixed(1)} s; kernel start to first result ${(Math.min(...runs.map((r) => r.firstResultMs)) / 1000).toFixed(2)}-${(Math.max(...runs.map((r) => r.firstResultMs)) / 1000).toFixed(2)} s`,
    );
  });

  it("the committed notebooks match their sources", () => {
    assert.deepEqual(checkNotebooks(), [], "run `npm run notebooks:build`");
  });

  it("runs every notebook without errors and with the expected outputs", () => {
    assert.ok(runs.length >= 6, `${runs.length} notebooks`);
    for (const r of runs) {
      assert.ok(r.ok, `${r.name}: ${r.error}`);
      const nb = JSON.parse(readFileSync(path.join(REPORT, "notebooks", `${r.name}.ipynb`), "utf8")) as Notebook;
      assert.deepEqual(notebookProblems(nb, expectations[r.name]), [], r.name);
    }
  });

  it("runs deterministically: a second run writes the same notebook byte for byte, but for each cell's timing", async () => {
    const name = "04_the_mul_output_scale_trap";
    // per-cell timing as nbclient records it: busy, execute_input, execute_reply, idle, in order
    const untimed = (text: string) => {
      const nb = JSON.parse(text) as {
        cells: { cell_type: string; metadata?: { execution?: Record<string, string> } }[];
      };
      for (const c of nb.cells.filter((c) => c.cell_type === "code")) {
        const t = c.metadata?.execution ?? {};
        const order = ["iopub.status.busy", "iopub.execute_input", "shell.execute_reply", "iopub.status.idle"].map(
          (k) => Date.parse(t[k]),
        );
        assert.ok(
          order.every((v, i) => Number.isFinite(v) && (i === 0 || v >= order[i - 1] - 1)),
          JSON.stringify(t),
        );
        delete c.metadata?.execution;
      }
      return JSON.stringify(nb, null, 1);
    };
    const first = untimed(readFileSync(path.join(REPORT, "notebooks", `${name}.ipynb`), "utf8"));
    const out = mkdtempSync(path.join(tmpdir(), "qb-again-"));
    try {
      const [again] = await walkthrough(/^04_/, () => undefined, out);
      assert.ok(again.ok);
      assert.equal(untimed(readFileSync(path.join(out, "notebooks", `${name}.ipynb`), "utf8")), first);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });

  it(
    "the report renders in headless Chromium: plots, tables, no console errors",
    { skip: existsSync(CHROMIUM) ? false : `${CHROMIUM} is not installed (apt-get install chromium)` },
    async () => {
      const { chromium } = require("playwright-core") as typeof import("playwright-core");
      const browser = await chromium.launch({
        executablePath: CHROMIUM,
        args: [
          "--no-sandbox",
          "--disable-gpu",
          "--disable-quic",
          "--no-first-run",
          "--disable-background-networking",
          "--disable-component-update",
          "--disable-sync",
        ],
      });
      try {
        const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
        const errors: string[] = [];
        page.on("console", (m) => {
          if (m.type() === "error") errors.push(m.text());
        });
        page.on("pageerror", (e) => errors.push(e.message));
        for (const name of ["index", ...runs.map((r) => r.name)]) {
          await page.goto(`file://${path.join(REPORT, `${name}.html`)}`);
          // charts are drawn by vega-embed from report/vendor/: every one goes live, none falls back
          const charts = (await page.evaluate(`document.querySelectorAll(".qb-chart").length`)) as number;
          if (charts > 0) {
            await page.waitForFunction("window.qbCharts && window.qbCharts.done", undefined, { timeout: 60000 });
            const state = (await page.evaluate(
              "({ live: qbCharts.live, failed: qbCharts.failed, errors: qbCharts.errors })",
            )) as {
              live: number;
              failed: number;
              errors: string[];
            };
            assert.deepEqual(state, { live: charts, failed: 0, errors: [] }, `${name}: interactive charts`);
          }
          // browser-side code as strings: the project compiles without the DOM library
          const counts = (await page.evaluate(`({
          svgs: [...document.querySelectorAll(".qb-plot svg")].filter((s) => s.getBoundingClientRect().width > 100).length,
          tables: document.querySelectorAll("table").length,
        })`)) as { svgs: number; tables: number };
          const exp = expectations[name];
          if (exp) {
            assert.ok(counts.svgs >= exp.plots, `${name}: ${counts.svgs} visible plots, expected ${exp.plots}`);
            assert.ok(counts.tables >= exp.tables, `${name}: ${counts.tables} tables, expected ${exp.tables}`);
          } else assert.ok(counts.tables >= 1, `${name}: no table`);
          const png = (await page.screenshot({ fullPage: false })).toString("base64");
          const inked = (await page.evaluate(`(async () => {
          const img = new Image();
          img.src = "data:image/png;base64,${png}";
          await img.decode();
          const c = document.createElement("canvas");
          c.width = img.width;
          c.height = img.height;
          const ctx = c.getContext("2d");
          ctx.drawImage(img, 0, 0);
          const d = ctx.getImageData(0, 0, c.width, c.height).data;
          let dark = 0;
          for (let i = 0; i < d.length; i += 4) if (d[i] + d[i + 1] + d[i + 2] < 600) dark++;
          return dark / (d.length / 4);
        })()`)) as number;
          assert.ok(inked > 0.01, `${name}: the screenshot is blank (${(inked * 100).toFixed(2)}% inked pixels)`);
        }
        assert.deepEqual(errors, [], "console errors");
      } finally {
        await browser.close();
      }
    },
  );
});
