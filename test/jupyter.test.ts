/**
 * Jupyter's own tools against the quantbook kernel: jupyter_kernel_test conformance, and every
 * notebook executed by nbclient with its outputs checked. They need Debian's Jupyter packages;
 * .ci/run installs them. Without them the tests are skipped here and fail in CI.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { describe, it } from "node:test";
import type { Notebook } from "../cli/notebookHtml";
import { jupyterMissing, kernelspecDir, PYTHON } from "./jupyterEnv";
import { notebookProblems, type Expectation } from "./notebookChecks";

const ROOT = path.join(__dirname, "..", "..");
const expectations = JSON.parse(readFileSync(path.join(ROOT, "test", "notebook_expectations.json"), "utf8")) as Record<
  string,
  Expectation
>;

function skipOrFail(reason: string | null): string | false {
  if (reason === null) return false;
  if (process.env.CI) throw new Error(`CI must have Jupyter installed: ${reason}`);
  return reason;
}

describe("Jupyter conformance and nbclient", () => {
  it(
    "passes jupyter_kernel_test",
    { skip: skipOrFail(jupyterMissing(["jupyter_kernel_test"])), timeout: 300000 },
    () => {
      const r = spawnSync(PYTHON, ["-m", "unittest", "-v", "test_kernel_conformance"], {
        cwd: path.join(ROOT, "test", "jupyter"),
        env: { ...process.env, JUPYTER_PATH: kernelspecDir() },
        encoding: "utf8",
        timeout: 280000,
      });
      const tally = /Ran (\d+) tests?[\s\S]*?\n(OK.*|FAILED.*)/.exec(r.stderr);
      console.log(`# jupyter_kernel_test: ${tally ? `${tally[1]} tests, ${tally[2]}` : "no tally"}`);
      assert.equal(r.status, 0, r.stderr.slice(-3000));
      assert.match(r.stderr, /OK/);
    },
  );

  // every notebook runs in the walkthrough test (through quantbook's own client); under Jupyter's
  // nbclient a sample of them — the first, and one with charts and tables — keeps CI short
  it(
    "runs notebooks under nbclient with the expected outputs (00, 05)",
    { skip: skipOrFail(jupyterMissing(["nbclient", "nbformat"])), timeout: 600000 },
    () => {
      const nbDir = path.join(ROOT, "notebooks");
      const files = readdirSync(nbDir)
        .filter((f) => /^(00|05)_.*\.ipynb$/.test(f))
        .sort();
      assert.equal(files.length, 2);
      const out = mkdtempSync(path.join(tmpdir(), "qb-nbclient-"));
      const t0 = performance.now();
      const r = spawnSync(
        PYTHON,
        [path.join(ROOT, "test", "jupyter", "run_notebooks.py"), out, ...files.map((f) => path.join(nbDir, f))],
        {
          env: { ...process.env, JUPYTER_PATH: kernelspecDir() },
          encoding: "utf8",
          timeout: 590000,
        },
      );
      console.log(`# nbclient: ${files.length} notebooks in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
      assert.equal(r.status, 0, `${r.stdout}\n${r.stderr.slice(-3000)}`);
      for (const f of files) {
        const name = f.replace(/\.ipynb$/, "");
        const exp = expectations[name];
        assert.ok(exp, `test/notebook_expectations.json has no entry for ${name}`);
        const nb = JSON.parse(readFileSync(path.join(out, f), "utf8")) as Notebook;
        assert.deepEqual(notebookProblems(nb, exp), [], name);
      }
    },
  );
});
