/**
 * What is generated from the op registry: the `qb.F` functions and `qb.nn` layers of entries with
 * a PyTorch face, docs/OPS.md, and the ONNX handlers of entries with an `onnxImport`. A new entry
 * is checked here with no new test code.
 */
import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import * as path from "node:path";
import { before, describe, it } from "node:test";
import { onnx } from "onnx-proto";
import * as qb from "../src";
import { allOps, type OpDef } from "../src/ops";
import type { OnnxImport, TorchApi } from "../src/ops/registry";
import { staleFiles } from "../scripts/genOps";
import { setup } from "./helpers";
import { importAndCompare, inTempDir, model } from "./onnxOracle";

const ROOT = path.join(__dirname, "..", "..");
type Fn = (x: tf.Tensor, ...rest: unknown[]) => tf.Tensor;

describe("generated from the op registry", { timeout: 120000 }, () => {
  before(setup);

  it("src/nn/generated/ and docs/OPS.md are up to date (else: npm run gen)", async () => {
    assert.deepEqual(await staleFiles(ROOT), [], "run `npm run gen` and commit the files it writes");
  });

  it("every entry with a PyTorch face has its qb.F function and qb.nn layer, computing the entry's float op", () => {
    const withTorch = allOps().filter((d): d is OpDef & { torch: TorchApi } => d.torch !== undefined);
    assert.ok(withTorch.length >= 20, `${withTorch.length} entries with a PyTorch face`);
    const before = tf.memory().numTensors;
    for (const def of withTorch) {
      const { fn, module, args = [] } = def.torch;
      const f = (qb.F as unknown as Record<string, Fn>)[fn];
      assert.equal(typeof f, "function", `qb.F.${fn} (${def.type})`);
      // the required arguments are axes here (softmax's dim); the rest keep PyTorch's defaults
      const required = args.filter((a) => a.default === undefined).map(() => -1);
      const attrs = Object.fromEntries(args.map((a) => [a.name, a.default ?? -1]));
      tf.tidy(() => {
        const x = tf.add(tf.abs(tf.randomNormal([2, 3, 4], 0, 2, "float32", 5)), 0.1);
        const got = f(x, ...required);
        const want = def.compute([x], undefined, [], attrs);
        assert.deepEqual(got.shape, want.shape, def.type);
        assert.ok(tf.max(tf.abs(tf.sub(got, want))).dataSync()[0] <= 1e-6, `qb.F.${fn} against ${def.type}'s compute`);
      });
      if (module !== undefined) {
        const Layer = (qb.nn as unknown as Record<string, new (...a: unknown[]) => qb.nn.Module>)[module];
        assert.equal(typeof Layer, "function", `qb.nn.${module} (${def.type})`);
        const m = new Layer(...required);
        const x = tf.ones([1, 3, 2]);
        const c = qb.prepare(m.eval(), x, { qconfigSetter: [qb.qconfig.defaultCalibrationQconfigSetter], warn: false });
        assert.deepEqual(
          qb.analysis.preparedOps(c).map((o) => o.info.type),
          [def.type],
          `qb.nn.${module} runs ${def.type}`,
        );
        [x, c, m].forEach((v) => v.dispose());
      }
    }
    assert.equal(tf.memory().numTensors, before, "no tensors left behind");
  });

  it("every entry's onnxImport: a one-node graph imports as the op, reads ONNX's attributes, and agrees with onnxruntime", async () => {
    const imported = allOps().filter((d): d is OpDef & { onnxImport: OnnxImport } => d.onnxImport !== undefined);
    assert.ok(imported.length >= 15, `${imported.length} entries import ONNX ops`);
    await inTempDir(async (dir) => {
      for (const def of imported) {
        const imp = def.onnxImport;
        // attributes away from their defaults, so that reading them is checked
        const attribute: onnx.IAttributeProto[] = Object.values(imp.attrs ?? {}).map(([name, fallback]) =>
          typeof fallback === "number"
            ? { name, type: 1, f: fallback * 0.5 + 0.05 }
            : { name, type: 3, s: new TextEncoder().encode(fallback) },
        );
        const bytes = model(
          18,
          [{ name: "op", opType: imp.op, input: ["x"], output: ["y"], attribute }],
          [],
          ["x", [2, 3, 4]],
          "y",
        );
        // positive inputs keep log, sqrt and reciprocal in their domain; the shift puts a third below zero
        const x = tf.tidy(() => tf.sub(tf.mul(tf.randomUniform([2, 3, 4], 0.05, 1, "float32", 3), 3), 1));
        const domain = ["Log", "Sqrt", "Reciprocal"].includes(imp.op) ? tf.abs(x) : x;
        const { m, y } = await importAndCompare(dir, imp.op, bytes, domain, 1e-5);
        const c = qb.prepare(m.eval(), domain, {
          qconfigSetter: [qb.qconfig.defaultCalibrationQconfigSetter],
          warn: false,
        });
        assert.deepEqual(
          qb.analysis.preparedOps(c).map((o) => o.info.type),
          ["QuantStub", def.type, "DeQuantStub"],
          `${imp.op} imports as ${def.type}`,
        );
        tf.dispose([x, domain, y]);
        c.dispose();
        m.dispose();
      }
    });
  });

  it("every elementwise onnxImport op lets a tf2onnx Transpose pair cancel through it (the layout pass reads the registry)", async () => {
    const imported = allOps().filter((d) => d.elementwise && d.onnxImport !== undefined);
    await inTempDir(async (dir) => {
      for (const def of imported) {
        const op = (def.onnxImport as OnnxImport).op;
        // NHWC in, NCHW for the op, NHWC out: the pass moves the first Transpose down to its inverse
        const bytes = model(
          18,
          [
            {
              name: "to_nchw",
              opType: "Transpose",
              input: ["x"],
              output: ["t"],
              attribute: [{ name: "perm", type: 7, ints: [0, 3, 1, 2] }],
            },
            { name: "op", opType: op, input: ["t"], output: ["u"] },
            {
              name: "to_nhwc",
              opType: "Transpose",
              input: ["u"],
              output: ["v"],
              attribute: [{ name: "perm", type: 7, ints: [0, 2, 3, 1] }],
            },
            // a last op: the pass leaves a Transpose that writes a graph output where it is
            { name: "out", opType: "Identity", input: ["v"], output: ["y"] },
          ],
          [],
          ["x", [1, 4, 5, 3]],
          "y",
        );
        const x = tf.tidy(() => tf.add(tf.abs(tf.randomNormal([1, 4, 5, 3], 0, 1, "float32", 4)), 0.1));
        const { m, y } = await importAndCompare(dir, `nhwc_${op}`, bytes, x, 1e-5);
        assert.equal(
          (m as unknown as { onnx: { transposesRemoved: number } }).onnx.transposesRemoved,
          2,
          `${op}: both Transposes removed`,
        );
        tf.dispose([x, y]);
        m.dispose();
      }
    });
  });
});
