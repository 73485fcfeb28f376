/**
 * `npm run bench:report`: the figures of `quantbook report` — the shipped notebooks executed on
 * fresh kernels, then rendered as saved (median of 5), page sizes with interactive charts
 * (vendor scripts beside the pages and inlined), and in headless Chromium the time from
 * navigation to every chart drawn by vega-embed.
 */
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { report } from "../cli/report";

const ROOT = path.join(__dirname, "..", "..");
const CHROMIUM = "/usr/bin/chromium";
const kb = (bytes: number) => `${(bytes / 1024).toFixed(0)} KB`;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function browserMs(pages: string[]): Promise<Record<string, number>> {
  const { chromium } = require("playwright-core") as typeof import("playwright-core");
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox", "--disable-gpu"] });
  const out: Record<string, number> = {};
  try {
    const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
    for (const file of pages) {
      const times: number[] = [];
      for (let i = 0; i < 3; i++) {
        const t0 = performance.now();
        await page.goto(`file://${file}`);
        await page.waitForFunction("window.qbCharts && window.qbCharts.done", undefined, { timeout: 60000 });
        times.push(performance.now() - t0);
      }
      out[path.basename(file, ".html")] = median(times);
    }
  } finally {
    await browser.close();
  }
  return out;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(path.join(tmpdir(), "qb-bench-report-"));
  try {
    const notebooks = readdirSync(path.join(ROOT, "notebooks"))
      .filter((f) => /^\d\d_.*\.ipynb$/.test(f))
      .map((f) => path.join(ROOT, "notebooks", f));
    const executed = await report(notebooks, { execute: true, out: path.join(dir, "executed") });
    console.log(
      `executed and rendered ${executed.runs.length} notebooks in ${(executed.ms / 1000).toFixed(1)} s (${executed.runs.filter((r) => r.ok).length} ok)`,
    );
    const saved = path.join(dir, "executed", "notebooks");
    const times: number[] = [];
    for (let i = 0; i < 5; i++) times.push((await report([saved], { out: path.join(dir, "saved") })).ms);
    console.log(
      `rendered the ${notebooks.length} executed notebooks as saved: median ${median(times).toFixed(0)} ms for the site`,
    );
    const inline = await report([saved], { out: path.join(dir, "inline"), inline: true });
    const vendor = readdirSync(path.join(dir, "saved", "vendor")).reduce(
      (a, f) => a + statSync(path.join(dir, "saved", "vendor", f)).size,
      0,
    );
    const rows = executed.runs.map((r) => ({
      notebook: r.name,
      charts: r.charts,
      page: kb(r.pageBytes),
      "page, inlined scripts": kb(inline.runs.find((x) => x.name === r.name)?.pageBytes ?? 0),
    }));
    const pages = executed.runs.filter((r) => r.charts > 0).map((r) => path.join(dir, "executed", `${r.name}.html`));
    if (existsSync(CHROMIUM)) {
      const ms = await browserMs(pages);
      for (const row of rows)
        (row as Record<string, unknown>)["charts drawn after"] =
          ms[row.notebook] === undefined ? "-" : `${ms[row.notebook].toFixed(0)} ms`;
    }
    console.table(rows);
    console.log(`vendor scripts beside the pages (vega, vega-lite, vega-embed): ${kb(vendor)}, loaded once per site`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (require.main === module) {
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
