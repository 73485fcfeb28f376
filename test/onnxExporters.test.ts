/**
 * Graphs as other exporters write them (issue: graphs from every exporter): long chains of residual
 * diamonds (load time linear in the node count), nodes not in dependency order (float16
 * converters append their Casts), float16 weights — each against onnxruntime and through the
 * workflow. Graphs are written here with quantbook's own ONNX builder.
 */
import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import * as qb from "../src";
import { OnnxBuilder } from "../src/ops/lowering";
import { ortRun, relErr } from "./onnxOracle";
import { assertThrows, quantizeAndConvert, setup } from "./helpers";

const dir = mkdtempSync(path.join(tmpdir(), "qb-exporters-"));

function seeded(n: number, seed: number, scale = 0.3): Float32Array {
  let s = seed;
  return Float32Array.from({ length: n }, () => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return (s / 2147483648 - 0.5) * 2 * scale;
  });
}

/** `blocks` residual diamonds x ← x + Conv(Relu(Conv(x))) over [1, c, 8, 8]; float16: weights stored as halves behind Casts appended last. */
function residualChain(blocks: number, c: number, float16 = false): Uint8Array {
  const b = new OnnxBuilder();
  b.addInput("x", "float32", [1, c, 8, 8]);
  let x = "x";
  const weight = (k: number) => {
    const data = seeded(c * c * 9, 7 + k, 0.2);
    if (!float16) return b.constant(data, [c, c, 3, 3]);
    return b.constant(data, [c, c, 3, 3], "float16", "w16");
  };
  const castNodes: [string, string][] = [];
  const w = (k: number) => {
    const v = weight(k);
    if (!float16) return v;
    const out = `cast${k}`;
    castNodes.push([v, out]);
    return out;
  };
  for (let i = 0; i < blocks; i++) {
    const h = b.op("Relu", [b.op("Conv", [x, w(2 * i)], { pads: [1, 1, 1, 1], kernel_shape: [3, 3] })]);
    x = b.op("Add", [x, b.op("Conv", [h, w(2 * i + 1)], { pads: [1, 1, 1, 1], kernel_shape: [3, 3] })]);
  }
  b.named("Relu", [x], "y");
  b.addOutput("y");
  // the float16 converter's pattern: every Cast after the nodes that read it
  for (const [from, to] of castNodes) b.named("Cast", [from], to);
  return float16 ? withCastAttrs(b.encode()) : b.encode();
}

/** Cast needs its `to` attribute; the builder's `named` writes none, so patch the encoded model. */
function withCastAttrs(bytes: Uint8Array): Uint8Array {
  const { onnx } = require("onnx-proto") as typeof import("onnx-proto");
  const m = onnx.ModelProto.decode(bytes);
  for (const n of m.graph?.node ?? [])
    if (n.opType === "Cast") n.attribute = [{ name: "to", type: onnx.AttributeProto.AttributeType.INT, i: 1 }];
  return onnx.ModelProto.encode(m).finish();
}

async function compare(name: string, bytes: Uint8Array, x: tf.Tensor, tol = 1e-4) {
  const file = path.join(dir, `${name}.onnx`);
  writeFileSync(file, bytes);
  const t0 = performance.now();
  const m = await qb.io.loadOnnx(bytes);
  const loadMs = performance.now() - t0;
  const y = m.forward(x) as unknown as tf.Tensor;
  const want = await ortRun(file, x);
  assert.equal(y.size, want.length);
  const err = relErr(y.dataSync(), want);
  assert.ok(err < tol, `${name}: ${err} relative to onnxruntime`);
  y.dispose();
  return { m, loadMs, err };
}

describe("ONNX graphs from other exporters", { timeout: 600000 }, () => {
  before(setup);
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("a long chain of residual diamonds loads in time linear in its size", async (t) => {
    const x = tf.tensor(seeded(4 * 64, 3, 1), [1, 4, 8, 8]);
    const times: string[] = [];
    let perNode = 0;
    for (const blocks of [25, 100, 200]) {
      const { m, loadMs } = await compare(`diamonds${blocks}`, residualChain(blocks, 4), x, 1e-3);
      times.push(`${blocks * 5 + 1} nodes: ${loadMs.toFixed(0)} ms`);
      perNode = loadMs / (blocks * 5 + 1);
      m.dispose();
    }
    t.diagnostic(`load time against node count: ${times.join(", ")}`);
    // exponential behaviour (every diamond doubling the walk) would take longer than the universe; linear is ~ms per node
    assert.ok(perNode < 50, `${perNode.toFixed(1)} ms per node`);
    x.dispose();
  });

  it("nodes out of dependency order with float16 weights (a float16 converter's file) import as the float32 twin, and run the workflow", async () => {
    const x = tf.tensor(seeded(4 * 64, 5, 1), [1, 4, 8, 8]);
    const half = await compare("float16_casts_last", residualChain(3, 4, true), x);
    const twin = await compare("float32_twin", residualChain(3, 4, false), x);
    const a = half.m.forward(x) as unknown as tf.Tensor;
    const b = twin.m.forward(x) as unknown as tf.Tensor;
    // float16 rounds each weight by at most 2^-11 relative
    assert.ok(relErr(a.dataSync(), b.dataSync()) < 5e-3, "float16 and float32 twins");
    // calibrated, exported with no chip-rule violation on NASH_M, converted
    const { c, fq, yi } = await quantizeAndConvert(half.m, x);
    assert.ok(relErr(yi.dataSync(), a.dataSync()) < 0.1, "integer model near float");
    tf.dispose([x, a, b, fq, yi]);
    c.dispose();
    half.m.dispose();
    twin.m.dispose();
  });

  it("tf2onnx's Max / Min with one-element constants become clips: float parity, and the chip check passes", async () => {
    const b = new OnnxBuilder();
    b.addInput("x", "float32", [1, 4, 8, 8]);
    const conv = b.op("Conv", ["x", b.constant(seeded(4 * 4 * 9, 11, 0.3), [4, 4, 3, 3])], {
      pads: [1, 1, 1, 1],
      kernel_shape: [3, 3],
    });
    const leaky = b.op("LeakyRelu", [conv], { alpha: { float: 0.1 } });
    const floor = b.op("Max", [leaky, b.constant(Float32Array.of(-0.05), [1, 1, 1, 1])]);
    const capped = b.op("Min", [b.constant(Float32Array.of(0.4), [1, 1, 1, 1]), floor]);
    b.named("Conv", [capped, b.constant(seeded(4 * 4 * 9, 12, 0.3), [4, 4, 3, 3])], "y");
    b.addOutput("y");
    const bytes = b.encode();
    const x = tf.tensor(seeded(4 * 64, 13, 1), [1, 4, 8, 8]);
    const { m } = await compare("tf2onnx_max_min", bytes, x);
    // the chip check passes (no violation on NASH_M)
    const { c, ir, fq, yi } = await quantizeAndConvert(m, x);
    tf.dispose([fq, yi]);
    assert.deepEqual(
      ir.nodes.filter((n) => n.type === "Clip").map((n) => [n.attrs.min, n.attrs.max]),
      [
        [Math.fround(-0.05), null],
        [null, Math.fround(0.4)],
      ],
    );
    tf.dispose(x);
    c.dispose();
    m.dispose();
  });

  it("tf2onnx's NHWC plumbing: Transpose pairs around convs cancel through elementwise ops, Add and Concat; float parity and the workflow", async (t) => {
    // NHWC in and out; every conv wrapped in Transpose(0,3,1,2) … Transpose(0,2,3,1), as tf2onnx leaves it
    const b = new OnnxBuilder();
    b.addInput("x", "float32", [1, 8, 8, 3]);
    const toNchw = (v: string) => b.op("Transpose", [v], { perm: [0, 3, 1, 2] });
    const toNhwc = (v: string) => b.op("Transpose", [v], { perm: [0, 2, 3, 1] });
    const conv = (v: string, cin: number, cout: number, seed: number) =>
      toNhwc(
        b.op(
          "Conv",
          [
            toNchw(v),
            b.constant(seeded(cout * cin * 9, seed, 0.3), [cout, cin, 3, 3]),
            b.constant(seeded(cout, seed + 50, 0.1), [cout]),
          ],
          {
            pads: [1, 1, 1, 1],
            kernel_shape: [3, 3],
          },
        ),
      );
    const h1 = b.op("Max", [
      b.op("LeakyRelu", [conv("x", 3, 8, 21)], { alpha: { float: 0.1 } }),
      b.constant(Float32Array.of(-0.05), [1, 1, 1, 1]),
    ]);
    const h2 = b.op("Relu", [b.op("Add", [conv(h1, 8, 8, 22), h1])]);
    const h3 = b.op("Mul", [
      conv(h2, 8, 8, 23),
      b.constant(
        Float32Array.from({ length: 8 }, (_, i) => 0.5 + i / 8),
        [1, 1, 1, 8],
      ),
    ]);
    const cat = b.op("Concat", [h3, h2], { axis: 3 });
    b.named("Identity", [conv(cat, 16, 4, 24)], "y");
    b.addOutput("y");
    const bytes = b.encode();
    const { onnx } = require("onnx-proto") as typeof import("onnx-proto");
    const transposes = onnx.ModelProto.decode(bytes).graph?.node?.filter((n) => n.opType === "Transpose").length ?? 0;
    const x = tf.tensor(seeded(64 * 3, 25, 1), [1, 8, 8, 3]);
    const { m } = await compare("tf2onnx_nhwc", bytes, x);
    const removed = m.onnx.transposesRemoved;
    const kept = transposes - removed;
    t.diagnostic(
      `tf2onnx-style NHWC graph: ${transposes} Transposes, ${removed} removed at import, ${kept} kept (the input's and the output's)`,
    );
    assert.equal(removed, 6);
    // calibrated, exported with no chip-rule violation on NASH_M, converted
    const { c, ir, fq, yi } = await quantizeAndConvert(m, x);
    assert.equal(
      qb.analysis.preparedOps(c).filter((o) => o.info.type === "Transpose" || o.info.type === "Permute").length,
      kept,
    );
    const rows = new qb.analysis.QuantAnalysis(m, c).sensitivity({ data: x }).rows;
    assert.ok(rows.length > 0);
    const yf = m.forward(x) as unknown as tf.Tensor;
    assert.ok(relErr(yi.dataSync(), yf.dataSync()) < 0.1, "integer model near float");
    assert.ok(qb.march.perf(ir).latencyMs > 0);
    tf.dispose([x, fq, yi, yf]);
    c.dispose();
    m.dispose();
  });

  it("a graph with a real cycle is refused, naming the nodes on it", async () => {
    const b = new OnnxBuilder();
    b.addInput("x", "float32", [1, 4]);
    b.named("Add", ["x", "b"], "a");
    b.named("Relu", ["a"], "b");
    b.named("Relu", ["a"], "y");
    b.addOutput("y");
    await assertThrows(
      () => qb.io.loadOnnx(b.encode()),
      /the graph has a cycle: 3 nodes wait on each other/,
      /Add#0 needs b/,
      /acyclic/,
    );
  });
});
