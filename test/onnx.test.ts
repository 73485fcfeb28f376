/**
 * ONNX import: models exported by PyTorch (test/fixtures/make_onnx_models.py) against
 * onnxruntime-node and PyTorch's own output, the whole workflow on each, module paths a user
 * recognises, hand-built graphs for opset-9 forms and paddle-style Constant weights, and bad input.
 */
import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { before, describe, it } from "node:test";
import { onnx } from "onnx-proto";
import * as ort from "onnxruntime-node";
import * as qb from "../src";
import { handledOpTypes } from "../src/io/onnx/plan";
import { readOnnx } from "../src/io/onnx/proto";
import { assertWithinOneStep, deadOps, quantizeAndConvert, setup } from "./helpers";
import { firstDivergence, floats, importAndCompare, inTempDir, int64s, model, ortRun, relErr } from "./onnxOracle";

const DIR = path.join(__dirname, "..", "..", "test", "fixtures", "onnx");
const index = JSON.parse(readFileSync(path.join(DIR, "index.json"), "utf8")) as Record<
  string,
  { model: string; opset: number; input: number[]; x: number[]; y: number[]; y_shape: number[] }
>;
const files = Object.keys(index).filter((k) => k.endsWith(".onnx"));

/** Ops whose output nothing reads (a fused pattern must leave no half of itself behind). */

describe("ONNX import", { timeout: 300000 }, () => {
  before(setup);

  for (const file of files) {
    it(`${file}: every node imports; float output matches onnxruntime and PyTorch within 1e-4`, async () => {
      const info = index[file];
      const g = readOnnx(readFileSync(path.join(DIR, file)), file);
      const known = new Set(handledOpTypes());
      assert.deepEqual(
        g.nodes.filter((n) => !known.has(n.opType)).map((n) => n.opType),
        [],
        "op coverage",
      );
      const m = await qb.io.loadOnnx(path.join(DIR, file));
      const x = tf.tensor(index[info.model].x, info.input);
      const y = m.forward(x) as unknown as tf.Tensor;
      assert.deepEqual(y.shape, index[info.model].y_shape);
      const ours = y.dataSync();
      const rt = await ortRun(path.join(DIR, file), x);
      if (relErr(ours, rt) >= 1e-4) {
        const d = await firstDivergence(path.join(DIR, file), m, x);
        assert.fail(`${file}: vs onnxruntime ${relErr(ours, rt)}; first diverging node: ${JSON.stringify(d)}`);
      }
      assert.ok(relErr(ours, index[info.model].y) < 1e-4, `${file}: vs PyTorch ${relErr(ours, index[info.model].y)}`);
      tf.dispose([x, y]);
      m.dispose();
    });
  }

  it("the divergence finder compares every node output with onnxruntime's (and finds none on a good import)", async () => {
    const file = path.join(DIR, "vit_opset13.onnx");
    const m = await qb.io.loadOnnx(file);
    const x = tf.tensor(index.vit.x, [1, 3, 32, 32]);
    const before = tf.memory().numTensors;
    assert.equal(await firstDivergence(file, m, x), null);
    // with a tolerance below float32 noise it must report some node, with how many it compared
    const strict = await firstDivergence(file, m, x, 0);
    assert.ok(strict !== null && strict.compared >= 1 && strict.error > 0, JSON.stringify(strict));
    assert.equal(tf.memory().numTensors, before, "values() results are disposed");
    x.dispose();
    m.dispose();
  });

  it("names ops and parameters by torch's module paths, so setters and tables speak the user's names", async () => {
    qb.setMarch(qb.March.NASH_M);
    const m = await qb.io.loadOnnx(path.join(DIR, "resnet_opset13.onnx"));
    const x = tf.randomNormal([1, 3, 32, 32], 0, 1, "float32", 1);
    const c = qb.prepare(m.eval(), x, {
      qconfigSetter: [
        qb.qconfig.ModuleNameQconfigSetter({ "layer1.0.conv1": qb.qconfig.getQconfig({ weightDtype: qb.qint16 }) }),
        qb.qconfig.calibration8bitWeight16bitActQconfigSetter,
      ],
    });
    const names = qb.analysis.preparedOps(c).map((o) => o.info.name);
    for (const n of [
      "quant",
      "conv1",
      "relu",
      "maxpool",
      "layer1.0.conv1",
      "layer1.0.add",
      "layer1.0.relu_1",
      "layer1.1.downsample.0",
      "avgpool",
      "fc",
      "dequant",
    ])
      assert.ok(names.includes(n), `${n} in ${names.join(", ")}`);
    assert.equal(qb.analysis.preparedOps(c).find((o) => o.info.name === "layer1.0.conv1")?.weight?.dtype, qb.qint16);
    const keys = Object.keys(m.stateDict());
    assert.ok(keys.includes("layer1.1.downsample.0.weight") && keys.includes("fc.weight"), keys.join(", "));
    tf.dispose(x);
    c.dispose();
    m.dispose();
  });

  for (const name of ["resnet", "mobilenet_v2", "mobilenet_v3", "efficient_block", "vit", "unet"]) {
    it(`${name}: prepare, calibrate, sensitivity, checkModel, export, convert (within one step), perf`, async () => {
      qb.setMarch(qb.March.NASH_M);
      const file = path.join(DIR, `${name}_opset13.onnx`);
      const m = await qb.io.loadOnnx(file);
      const shape = index[`${name}_opset13.onnx`].input;
      const batches = [0, 1, 2].map((s) => tf.randomNormal(shape, 0, 1, "float32", 10 + s));
      const setter = qb.qconfig.defaultCalibrationQconfigSetter;
      const c = qb.prepare(m.eval(), batches[0], { qconfigSetter: [setter] });
      qb.setFakeQuantize(c, qb.FakeQuantState.CALIBRATION);
      await qb.calibrate(c, batches, { onProgress: () => {} });
      qb.setFakeQuantize(c, qb.FakeQuantState.VALIDATION);
      const qa = new qb.analysis.QuantAnalysis(m, c, { onProgress: () => {} });
      const sens = qa.sensitivity({ data: batches[0] });
      assert.ok(sens.rows.length > 3);
      const check = qb.march.checkModel(c, qb.March.NASH_M);
      assert.deepEqual(
        check.violations.map((v) => v.message),
        [],
      );
      const ir = qb.export(c, batches[0]);
      assert.deepEqual(deadOps(ir), []);
      const hb = qb.convert(ir, qb.March.NASH_M);
      const fq = c.forward(batches[1]) as unknown as tf.Tensor;
      const yi = hb.forward(batches[1]);
      const out = ir.nodes.find((n) => n.type === "DeQuantStub") as (typeof ir.nodes)[number];
      const producer = ir.nodes.find((n) => n.name === out.inputs[0].source) as (typeof ir.nodes)[number];
      const step = producer.output.quant.scale?.[0];
      if (step !== undefined) assertWithinOneStep(yi.dataSync(), fq.dataSync(), step * (1 + 1e-6), 0.99);
      else assert.ok(relErr(yi.dataSync(), fq.dataSync()) < 0.05, "high-precision output close to fake-quant");
      const p = qb.march.perf(hb);
      assert.ok(p.latencyMs > 0);
      console.log(
        `# ${name}: ${ir.nodes.length} IR nodes, worst op ${sens.rows[0].op_name} (${sens.rows[0].sensitive_type}), ${p.latencyMs.toFixed(4)} ms on NASH_M`,
      );
      tf.dispose([...batches, fq, yi]);
      c.dispose();
      m.dispose();
    });
  }

  it("the article's rewrite applies to an imported transformer projection", async () => {
    qb.setMarch(qb.March.NASH_M);
    const m = await qb.io.loadOnnx(path.join(DIR, "vit_opset13.onnx"));
    const x = tf.randomNormal([1, 3, 32, 32], 0, 1, "float32", 4);
    const rewritten = qb.transforms.replaceLinearWithBroadcastMulSum(m, "encoder.linear1");
    const [a, b] = [m.forward(x) as unknown as tf.Tensor, rewritten.forward(x) as unknown as tf.Tensor];
    assert.ok(relErr(b.dataSync(), a.dataSync()) < 1e-4, "same function in float");
    const c = qb.prepare(rewritten.eval(), x, { qconfigSetter: [qb.qconfig.defaultCalibrationQconfigSetter] });
    assert.ok(qb.analysis.preparedOps(c).some((o) => o.info.name === "encoder.linear1.mul"));
    tf.dispose([x, a, b]);
    c.dispose();
    rewritten.dispose();
    m.dispose();
  });

  it("opset-9 forms (Slice and Pad attributes, Upsample scales) and paddle-style Constant-node weights", async () => {
    const w = Array.from({ length: 4 * 2 * 3 * 3 }, (_, i) => Math.sin(i));
    const bytes = model(
      9,
      [
        {
          name: "p2o.Constant.0",
          opType: "Constant",
          output: ["w"],
          attribute: [{ name: "value", type: 4, t: floats("", [4, 2, 3, 3], w) }],
        },
        {
          name: "p2o.Conv.0",
          opType: "Conv",
          input: ["x", "w"],
          output: ["c"],
          attribute: [{ name: "pads", type: 7, ints: [1, 1, 1, 1] }],
        },
        {
          name: "p2o.Slice.0",
          opType: "Slice",
          input: ["c"],
          output: ["s"],
          attribute: [
            { name: "starts", type: 7, ints: [1] },
            { name: "ends", type: 7, ints: [3] },
            { name: "axes", type: 7, ints: [1] },
          ],
        },
        {
          name: "p2o.Pad.0",
          opType: "Pad",
          input: ["s"],
          output: ["p"],
          attribute: [{ name: "pads", type: 7, ints: [0, 0, 1, 0, 0, 0, 0, 2] }],
        },
        {
          name: "p2o.Upsample.0",
          opType: "Upsample",
          input: ["p", "scales"],
          output: ["u"],
          attribute: [{ name: "mode", type: 3, s: Buffer.from("nearest") }],
        },
      ],
      [floats("scales", [4], [1, 1, 2, 2])],
      ["x", [1, 2, 5, 5]],
      "u",
    );
    await inTempDir(async (dir) => {
      const x = tf.randomNormal([1, 2, 5, 5], 0, 1, "float32", 2);
      const { m, y } = await importAndCompare(dir, "paddle_style", bytes, x, 1e-5);
      assert.deepEqual(y.shape, [1, 2, 12, 14]);
      assert.deepEqual(Object.keys(m.stateDict()), ["p2o_Conv_0.weight"]);
      tf.dispose([x, y]);
      m.dispose();
    });
  });

  it("Resize and Upsample in every coordinate and rounding mode other exporters write match onnxruntime, float and integer", async () => {
    await inTempDir(async (dir) => {
      const str = (name: string, v: string) => ({ name, type: 3, s: Buffer.from(v) });
      const cases: {
        label: string;
        opset: number;
        attrs: onnx.IAttributeProto[];
        scales?: number[];
        sizes?: number[];
        op?: string;
      }[] = [];
      for (const coord of ["half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric"]) {
        for (const nearest of ["floor", "ceil", "round_prefer_floor", "round_prefer_ceil"]) {
          cases.push({
            label: `nearest ${coord} ${nearest} up`,
            opset: 13,
            attrs: [str("mode", "nearest"), str("coordinate_transformation_mode", coord), str("nearest_mode", nearest)],
            scales: [1, 1, 2.5, 1.5],
          });
        }
        cases.push({
          label: `linear ${coord} up`,
          opset: 13,
          attrs: [str("mode", "linear"), str("coordinate_transformation_mode", coord)],
          scales: [1, 1, 2, 3],
        });
        cases.push({
          label: `linear ${coord} down to sizes`,
          opset: 11,
          attrs: [str("mode", "linear"), str("coordinate_transformation_mode", coord)],
          sizes: [1, 2, 3, 1],
        });
        cases.push({
          label: `nearest ${coord} down to sizes`,
          opset: 11,
          attrs: [str("mode", "nearest"), str("coordinate_transformation_mode", coord)],
          sizes: [1, 2, 2, 4],
        });
      }
      cases.push({
        label: "opset-9 Upsample linear (asymmetric)",
        opset: 9,
        attrs: [str("mode", "linear")],
        scales: [1, 1, 2, 2],
        op: "Upsample",
      });
      cases.push({
        label: "opset-10 Resize nearest (asymmetric, floor)",
        opset: 10,
        attrs: [str("mode", "nearest")],
        scales: [1, 1, 3, 2],
      });
      const x = tf.randomNormal([1, 2, 5, 7], 0, 1, "float32", 11);
      for (const [i, c] of cases.entries()) {
        const op = c.op ?? "Resize";
        const inputs =
          op === "Upsample" || c.opset < 11
            ? ["x", "scales"]
            : c.sizes
              ? ["x", "roi", "none", "sizes"]
              : ["x", "", "scales"];
        // opset 11 wants roi and scales present (empty) when sizes are given
        const inits = c.sizes
          ? [floats("roi", [0], []), floats("none", [0], []), int64s("sizes", c.sizes)]
          : [floats("scales", [4], c.scales ?? [])];
        const bytes = model(
          c.opset,
          [{ name: `/up/${op}`, opType: op, input: inputs, output: ["y"], attribute: c.attrs }],
          inits,
          ["x", [1, 2, 5, 7]],
          "y",
        );
        const { m, y } = await importAndCompare(dir, `resize_${i} ${c.label}`, bytes, x, 1e-6);
        // the integer model agrees with fake quantization (nearest moves codes; linear is computed from codes, rounded once)
        const { ir, fq, yi } = await quantizeAndConvert(m, x);
        const resize = ir.nodes.find((n) => n.type.startsWith("Resize")) as (typeof ir.nodes)[number];
        const step =
          resize.output.quant.scale?.[0] ?? ir.nodes.find((n) => n.type === "QuantStub")?.output.quant.scale?.[0];
        assert.ok(step !== undefined, c.label);
        assertWithinOneStep(yi.dataSync(), fq.dataSync(), step * (1 + 1e-6), 1);
        tf.dispose([y, fq, yi]);
        m.dispose();
      }
      x.dispose();
    });
  });

  it("real-model patterns: a constant shared by two blocks (ConvNeXt's deduplicated layer scale) and an embedding gathered by int64 token ids", async () => {
    // two Conv + Mul(gamma) blocks reading the same initializer
    const w = (seed: number) => Array.from({ length: 4 * 4 * 3 * 3 }, (_, i) => Math.sin(i * seed) * 0.3);
    const shared = model(
      13,
      [
        {
          name: "/b0/conv/Conv",
          opType: "Conv",
          input: ["x", "w0"],
          output: ["c0"],
          attribute: [{ name: "pads", type: 7, ints: [1, 1, 1, 1] }],
        },
        { name: "/b0/Mul", opType: "Mul", input: ["gamma", "c0"], output: ["m0"] },
        {
          name: "/b1/conv/Conv",
          opType: "Conv",
          input: ["m0", "w1"],
          output: ["c1"],
          attribute: [{ name: "pads", type: 7, ints: [1, 1, 1, 1] }],
        },
        { name: "/b1/Mul", opType: "Mul", input: ["gamma", "c1"], output: ["y"] },
      ],
      [
        floats("w0", [4, 4, 3, 3], w(1)),
        floats("w1", [4, 4, 3, 3], w(2)),
        floats("gamma", [4, 1, 1], [0.5, 2, -1, 0.25]),
      ],
      ["x", [1, 4, 5, 5]],
      "y",
    );
    await inTempDir(async (dir) => {
      writeFileSync(path.join(dir, "shared.onnx"), shared);
      const m = await qb.io.loadOnnx(shared);
      const x = tf.randomNormal([1, 4, 5, 5], 0, 1, "float32", 5);
      const y = m.forward(x) as unknown as tf.Tensor;
      assert.ok(relErr(y.dataSync(), await ortRun(path.join(dir, "shared.onnx"), x)) < 1e-6);
      const { ir, fq, yi } = await quantizeAndConvert(m, x);
      // each block quantizes the constant through its own stub, read from the float constant
      const stubs = ir.nodes.filter((n) => n.type === "QuantStub" && n.name.includes("const"));
      assert.deepEqual(
        stubs.map((n) => [n.module, n.inputs[0].source]),
        [
          ["b0", "<float>"],
          ["b1", "<float>"],
        ],
      );
      const step = ir.nodes.find((n) => n.name === "b1.mul")?.output.quant.scale?.[0] as number;
      assertWithinOneStep(yi.dataSync(), fq.dataSync(), step * (1 + 1e-6), 1);
      tf.dispose([x, y, fq, yi]);
      m.dispose();

      // token ids -> embedding table (a float constant) -> Linear
      const table = Array.from({ length: 10 * 6 }, (_, i) => Math.cos(i) * 0.5);
      const head = Array.from({ length: 6 * 3 }, (_, i) => Math.sin(i + 1) * 0.4);
      const emb = onnx.ModelProto.encode({
        irVersion: 7,
        opsetImport: [{ domain: "", version: 13 }],
        graph: {
          name: "g",
          node: [
            { name: "/tok/Gather", opType: "Gather", input: ["table", "ids"], output: ["e"] },
            { name: "/head/MatMul", opType: "MatMul", input: ["e", "W"], output: ["y"] },
          ],
          initializer: [floats("table", [10, 6], table), floats("W", [6, 3], head)],
          input: [
            { name: "ids", type: { tensorType: { elemType: 7, shape: { dim: [{ dimValue: 2 }, { dimValue: 5 }] } } } },
          ],
          output: [{ name: "y" }],
        },
      }).finish();
      writeFileSync(path.join(dir, "emb.onnx"), emb);
      const ids = [1, 4, 9, 0, 3, 3, 7, 2, 8, 5];
      const session = await ort.InferenceSession.create(path.join(dir, "emb.onnx"));
      const want = (await session.run({ ids: new ort.Tensor("int64", BigInt64Array.from(ids.map(BigInt)), [2, 5]) })).y
        .data as Float32Array;
      const em = await qb.io.loadOnnx(emb);
      const t = tf.tensor(ids, [2, 5], "int32");
      const got = em.forward(t) as unknown as tf.Tensor;
      assert.ok(relErr(got.dataSync(), want) < 1e-6);
      const r = await quantizeAndConvert(em, t);
      const gather = r.ir.nodes.find((n) => n.type === "Gather") as (typeof r.ir.nodes)[number];
      assert.equal(gather.output.quant.dtype, "qint8", "the lookup moves int8 codes of the quantized table");
      assert.ok(relErr(r.yi.dataSync(), r.fq.dataSync()) < 1e-3);
      tf.dispose([t, got, r.fq, r.yi]);
      em.dispose();
    });
  });

  it("Gemm with transA, and ConvTranspose with output_shape, automatic or asymmetric pads, match onnxruntime", async () => {
    await inTempDir(async (dir) => {
      const ints = (name: string, v: number[]) => ({ name, type: 7, ints: v });
      const str = (name: string, v: string) => ({ name, type: 3, s: Buffer.from(v) });
      const wt = Array.from({ length: 3 * 2 * 3 * 3 }, (_, i) => Math.sin(i + 0.5) * 0.4);
      const convT = (attrs: onnx.IAttributeProto[]) =>
        model(
          13,
          [
            {
              name: "/up/ConvTranspose",
              opType: "ConvTranspose",
              input: ["x", "w", "b"],
              output: ["y"],
              attribute: attrs,
            },
          ],
          [floats("w", [3, 2, 3, 3], wt), floats("b", [2], [0.1, -0.2])],
          ["x", [1, 3, 5, 6]],
          "y",
        );
      const cases: [string, Uint8Array, number[]][] = [
        [
          "Gemm transA transB alpha",
          model(
            13,
            [
              {
                name: "/fc/Gemm",
                opType: "Gemm",
                input: ["x", "w", "c"],
                output: ["y"],
                attribute: [
                  { name: "transA", type: 2, i: 1 },
                  { name: "transB", type: 2, i: 1 },
                  { name: "alpha", type: 1, f: 0.5 },
                ],
              },
            ],
            [
              floats(
                "w",
                [4, 6],
                Array.from({ length: 24 }, (_, i) => Math.cos(i)),
              ),
              floats("c", [4], [1, 2, 3, 4]),
            ],
            ["x", [6, 3]],
            "y",
          ),
          [6, 3],
        ],
        ["ConvTranspose output_shape", convT([ints("strides", [2, 2]), ints("output_shape", [10, 13])]), [1, 3, 5, 6]],
        ["ConvTranspose SAME_UPPER", convT([ints("strides", [2, 2]), str("auto_pad", "SAME_UPPER")]), [1, 3, 5, 6]],
        ["ConvTranspose SAME_LOWER", convT([ints("strides", [2, 2]), str("auto_pad", "SAME_LOWER")]), [1, 3, 5, 6]],
        [
          "ConvTranspose asymmetric pads",
          convT([ints("strides", [2, 1]), ints("pads", [0, 2, 1, 0]), ints("output_padding", [1, 0])]),
          [1, 3, 5, 6],
        ],
      ];
      for (const [label, bytes, shape] of cases) {
        const x = tf.randomNormal(shape, 0, 1, "float32", 4);
        const { m, y } = await importAndCompare(dir, label, bytes, x, 1e-5);
        tf.dispose([x, y]);
        m.dispose();
      }
    });
  });

  it("Pad in reflect, edge and constant modes (opset 9 attributes and opset 11 inputs) matches onnxruntime", async () => {
    await inTempDir(async (dir) => {
      const str = (name: string, v: string) => ({ name, type: 3, s: Buffer.from(v) });
      const x = tf.randomNormal([1, 2, 4, 5], 0, 1, "float32", 8);
      for (const mode of ["reflect", "edge", "constant"]) {
        for (const opset of [9, 11]) {
          const pads = [0, 0, 2, 1, 0, 0, 1, 3];
          const node =
            opset < 11
              ? {
                  name: "/p/Pad",
                  opType: "Pad",
                  input: ["x"],
                  output: ["y"],
                  attribute: [
                    str("mode", mode),
                    { name: "pads", type: 7, ints: pads },
                    { name: "value", type: 1, f: 0.5 },
                  ],
                }
              : {
                  name: "/p/Pad",
                  opType: "Pad",
                  input: ["x", "pads", "v"],
                  output: ["y"],
                  attribute: [str("mode", mode)],
                };
          const inits = opset < 11 ? [] : [int64s("pads", pads), floats("v", [], [0.5])];
          const bytes = model(opset, [node], inits, ["x", [1, 2, 4, 5]], "y");
          const { m, y } = await importAndCompare(dir, `pad ${mode} opset ${opset}`, bytes, x, 1e-7);
          assert.deepEqual(y.shape, [1, 2, 7, 9], `${mode} opset ${opset}`);
          y.dispose();
          m.dispose();
        }
      }
      x.dispose();
    });
  });

  it("Elu, Softplus, Abs, Neg, Log, PRelu and variadic Max / Min match onnxruntime and run through the workflow", async () => {
    await inTempDir(async (dir) => {
      const bytes = model(
        13,
        [
          {
            name: "/a/Elu",
            opType: "Elu",
            input: ["x"],
            output: ["y1"],
            attribute: [{ name: "alpha", type: 1, f: 0.8 }],
          },
          { name: "/b/PRelu", opType: "PRelu", input: ["y1", "slope"], output: ["y2"] },
          { name: "/c/Softplus", opType: "Softplus", input: ["y2"], output: ["y3"] },
          { name: "/d/Neg", opType: "Neg", input: ["y3"], output: ["y4"] },
          { name: "/e/Abs", opType: "Abs", input: ["y4"], output: ["y5"] },
          { name: "/f/Max", opType: "Max", input: ["y5", "x", "c"], output: ["y6"] },
          { name: "/g/Min", opType: "Min", input: ["y6", "y2"], output: ["y7"] },
          { name: "/h/Add", opType: "Add", input: ["y5", "half"], output: ["y8"] },
          { name: "/h/Log", opType: "Log", input: ["y8"], output: ["y9"] },
          { name: "/out/Add", opType: "Add", input: ["y7", "y9"], output: ["y"] },
        ],
        [
          floats("slope", [3, 1, 1], [0.1, -0.3, 0.6]),
          floats("c", [1, 3, 1, 1], [0.2, -0.1, 0.4]),
          floats("half", [], [0.5]),
        ],
        ["x", [1, 3, 4, 4]],
        "y",
      );
      const file = path.join(dir, "acts.onnx");
      writeFileSync(file, bytes);
      const m = await qb.io.loadOnnx(bytes);
      const x = tf.randomNormal([1, 3, 4, 4], 0, 1.5, "float32", 9);
      const y = m.forward(x) as unknown as tf.Tensor;
      assert.ok(relErr(y.dataSync(), await ortRun(file, x)) < 1e-6, `${relErr(y.dataSync(), await ortRun(file, x))}`);
      const { ir, fq, yi } = await quantizeAndConvert(m, x, qb.qconfig.calibration8bitWeight16bitActQconfigSetter);
      assert.deepEqual(
        ir.nodes.map((n) => n.type).filter((t) => !/Stub/.test(t)),
        ["ELU", "PReLU", "Softplus", "Neg", "Abs", "Maximum", "Maximum", "Minimum", "Add", "Log", "Add"],
      );
      assert.ok(
        relErr(yi.dataSync(), fq.dataSync()) < 1e-3,
        `integer vs fake-quant ${relErr(yi.dataSync(), fq.dataSync())}`,
      );
      tf.dispose([x, y, fq, yi]);
      m.dispose();
    });
  });

  it("attention masks: a constant causal Where with −∞ and an additive mask from an int64 input stay traced, calibrate, convert and analyse", async () => {
    const vi = (name: string, elemType: number, dims: number[]) => ({
      name,
      type: { tensorType: { elemType, shape: { dim: dims.map((d) => ({ dimValue: d })) } } },
    });
    const causal = Array.from({ length: 16 }, (_, i) => (i % 4 > Math.floor(i / 4) ? 1 : 0));
    const bytes = onnx.ModelProto.encode({
      irVersion: 7,
      opsetImport: [{ domain: "", version: 13 }],
      graph: {
        name: "g",
        node: [
          {
            name: "/attn/Transpose",
            opType: "Transpose",
            input: ["x"],
            output: ["xt"],
            attribute: [{ name: "perm", type: 7, ints: [0, 2, 1] }],
          },
          { name: "/attn/MatMul", opType: "MatMul", input: ["x", "xt"], output: ["scores"] },
          { name: "/attn/Where", opType: "Where", input: ["causal", "ninf", "scores"], output: ["masked"] },
          { name: "/attn/Unsqueeze", opType: "Unsqueeze", input: ["mask", "axis1"], output: ["m3"] },
          {
            name: "/attn/Cast",
            opType: "Cast",
            input: ["m3"],
            output: ["mf"],
            attribute: [{ name: "to", type: 2, i: 1 }],
          },
          { name: "/attn/Sub", opType: "Sub", input: ["one", "mf"], output: ["inv"] },
          { name: "/attn/Mul", opType: "Mul", input: ["inv", "big"], output: ["ext"] },
          { name: "/attn/Add", opType: "Add", input: ["masked", "ext"], output: ["s2"] },
          {
            name: "/attn/Softmax",
            opType: "Softmax",
            input: ["s2"],
            output: ["y"],
            attribute: [{ name: "axis", type: 2, i: -1 }],
          },
        ],
        initializer: [
          { name: "causal", dims: [4, 4], dataType: 9, int32Data: causal },
          floats("ninf", [], [-Infinity]),
          int64s("axis1", [1]),
          floats("one", [], [1]),
          floats("big", [], [-10000]),
        ],
        input: [vi("x", 1, [1, 4, 6]), vi("mask", 7, [1, 4])],
        output: [{ name: "y" }],
      },
    }).finish();
    await inTempDir(async (dir) => {
      writeFileSync(path.join(dir, "mask.onnx"), bytes);
      const x = tf.randomNormal([1, 4, 6], 0, 1, "float32", 12);
      const mask = tf.tensor([1, 1, 1, 0], [1, 4], "int32");
      const session = await ort.InferenceSession.create(path.join(dir, "mask.onnx"));
      const want = (
        await session.run({
          x: new ort.Tensor("float32", x.dataSync() as Float32Array, [1, 4, 6]),
          mask: new ort.Tensor("int64", BigInt64Array.from([1n, 1n, 1n, 0n]), [1, 4]),
        })
      ).y.data as Float32Array;
      const m = await qb.io.loadOnnx(bytes);
      const y = m.forward(x, mask) as unknown as tf.Tensor;
      assert.ok(relErr(y.dataSync(), want) < 1e-6);
      // calibration passes (−∞ saturates instead of failing the batch)
      const { c, ir, fq, yi } = await quantizeAndConvert(m, [x, mask]);
      // the mask enters as a quantized input of its own and the causal fill is an op: nothing cuts the graph
      assert.deepEqual(qb.analysis.modelCheckResult(c).untracedInputs, []);
      assert.deepEqual(
        ir.nodes.map((n) => n.type),
        ["QuantStub", "Transpose", "Matmul", "MaskedFill", "QuantStub", "Sub", "Mul", "Add", "Softmax", "DeQuantStub"],
      );
      const step = ir.nodes.find((n) => n.type === "Softmax")?.output.quant.scale?.[0] as number;
      assertWithinOneStep(yi.dataSync(), fq.dataSync(), step * (1 + 1e-6), 1);
      // the trap this pattern sets: −10000 in the additive mask stretches the Add's int8 range to a
      // step of ~78, so the scores and the saturated −∞ all round to 0 — causal row 0 attends to
      // three positions instead of one, in fake-quant and integer alike; sensitivity names that Add
      assert.deepEqual(Array.from(y.dataSync()).slice(0, 4), [1, 0, 0, 0]);
      const row0 = Array.from(yi.dataSync()).slice(0, 4);
      assert.ok(row0[1] > 0.3 && row0[3] === 0, `causal row 0: ${row0}`);
      const sens = new qb.analysis.QuantAnalysis(m, c, { onProgress: () => {} }).sensitivity({ data: [x, mask] });
      assert.equal(sens.rows[0].op_name, "attn.add");
      tf.dispose([x, mask, y, fq, yi]);
      m.dispose();
    });
  });

  it("DepthToSpace, SpaceToDepth, Tile, InstanceNormalization, ReduceMin, LogSoftmax and a causal mask built with Trilu match onnxruntime", async () => {
    await inTempDir(async (dir) => {
      const int = (name: string, i: number) => ({ name, type: 2, i });
      const str = (name: string, v: string) => ({ name, type: 3, s: Buffer.from(v) });
      const a = model(
        13,
        [
          {
            name: "/up/DepthToSpace",
            opType: "DepthToSpace",
            input: ["x"],
            output: ["d"],
            attribute: [int("blocksize", 2)],
          },
          {
            name: "/down/SpaceToDepth",
            opType: "SpaceToDepth",
            input: ["d"],
            output: ["s"],
            attribute: [int("blocksize", 2)],
          },
          {
            name: "/ps/DepthToSpace",
            opType: "DepthToSpace",
            input: ["s"],
            output: ["c"],
            attribute: [int("blocksize", 2), str("mode", "CRD")],
          },
          { name: "/rep/Tile", opType: "Tile", input: ["c", "reps"], output: ["t"] },
          {
            name: "/gn/InstanceNormalization",
            opType: "InstanceNormalization",
            input: ["t", "gs", "gb"],
            output: ["n"],
            attribute: [{ name: "epsilon", type: 1, f: 1e-5 }],
          },
          {
            name: "/m/ReduceMin",
            opType: "ReduceMin",
            input: ["n"],
            output: ["r"],
            attribute: [{ name: "axes", type: 7, ints: [3] }],
          },
          { name: "/m/Add", opType: "Add", input: ["n", "r"], output: ["z"] },
          { name: "/head/LogSoftmax", opType: "LogSoftmax", input: ["z"], output: ["y"], attribute: [int("axis", 1)] },
        ],
        [int64s("reps", [1, 2, 1, 1]), floats("gs", [4], [1, 0.5, 2, 1.5]), floats("gb", [4], [0, 0.1, -0.2, 0.3])],
        ["x", [1, 8, 4, 6]],
        "y",
      );
      const b = model(
        14,
        [
          {
            name: "/attn/Transpose",
            opType: "Transpose",
            input: ["x"],
            output: ["xt"],
            attribute: [{ name: "perm", type: 7, ints: [0, 2, 1] }],
          },
          { name: "/attn/MatMul", opType: "MatMul", input: ["x", "xt"], output: ["scores"] },
          { name: "/attn/Shape", opType: "Shape", input: ["scores"], output: ["sh"] },
          { name: "/attn/Slice", opType: "Slice", input: ["sh", "from", "to"], output: ["hw"] },
          {
            name: "/attn/ConstantOfShape",
            opType: "ConstantOfShape",
            input: ["hw"],
            output: ["ones"],
            attribute: [{ name: "value", type: 4, t: floats("", [1], [1]) }],
          },
          { name: "/attn/Trilu", opType: "Trilu", input: ["ones", "k"], output: ["upper"] },
          { name: "/attn/Cast", opType: "Cast", input: ["upper"], output: ["cond"], attribute: [int("to", 9)] },
          { name: "/attn/Where", opType: "Where", input: ["cond", "ninf", "scores"], output: ["masked"] },
          { name: "/attn/Softmax", opType: "Softmax", input: ["masked"], output: ["y"], attribute: [int("axis", -1)] },
        ],
        [
          int64s("from", [1]),
          int64s("to", [3]),
          { name: "k", dims: [], dataType: 7, int64Data: [1] },
          floats("ninf", [], [-Infinity]),
        ],
        ["x", [1, 5, 8]],
        "y",
      );
      for (const [label, bytes, shape, op] of [
        ["layout and normalisation", a, [1, 8, 4, 6], "InstanceNorm"],
        ["Trilu causal mask", b, [1, 5, 8], "MaskedFill"],
      ] as const) {
        const x = tf.randomNormal(shape as unknown as number[], 0, 1, "float32", 13);
        const { m, y } = await importAndCompare(dir, label, bytes, x, 1e-5);
        const { c, ir, fq, yi } = await quantizeAndConvert(m, x);
        assert.deepEqual(qb.analysis.modelCheckResult(c).untracedInputs, [], label);
        assert.ok(
          ir.nodes.some((n) => n.type === op),
          `${label}: ${ir.nodes.map((n) => n.type)}`,
        );
        const last = ir.nodes[ir.nodes.length - 2];
        assertWithinOneStep(yi.dataSync(), fq.dataSync(), (last.output.quant.scale?.[0] as number) * (1 + 1e-6), 0.98);
        tf.dispose([x, y, fq, yi]);
        m.dispose();
      }
    });
  });

  it("GridSample (opset 16) in every mode, padding and align_corners matches onnxruntime, float and integer", async () => {
    await inTempDir(async (dir) => {
      const str = (name: string, v: string) => ({ name, type: 3, s: Buffer.from(v) });
      // a grid reaching past [-1, 1], so every padding mode is exercised
      const grid = Array.from({ length: 1 * 3 * 5 * 2 }, (_, i) => Math.sin(i * 1.7) * 1.3);
      const x = tf.randomNormal([1, 2, 4, 6], 0, 1, "float32", 14);
      for (const mode of ["bilinear", "nearest"]) {
        for (const padding of ["zeros", "border", "reflection"]) {
          for (const align of [0, 1]) {
            const label = `${mode} ${padding} align_corners=${align}`;
            const bytes = model(
              16,
              [
                {
                  name: "/bev/GridSample",
                  opType: "GridSample",
                  input: ["x", "grid"],
                  output: ["y"],
                  attribute: [
                    str("mode", mode),
                    str("padding_mode", padding),
                    { name: "align_corners", type: 2, i: align },
                  ],
                },
              ],
              [floats("grid", [1, 3, 5, 2], grid)],
              ["x", [1, 2, 4, 6]],
              "y",
            );
            const { m, y } = await importAndCompare(dir, `grid ${label}`, bytes, x, 1e-5);
            const { ir, fq, yi } = await quantizeAndConvert(m, x);
            const step = ir.nodes.find((n) => n.type === "GridSample")?.output.quant.scale?.[0] as number;
            assertWithinOneStep(yi.dataSync(), fq.dataSync(), step * (1 + 1e-6), 1);
            tf.dispose([y, fq, yi]);
            m.dispose();
          }
        }
      }
      x.dispose();
    });
  });

  it("1-D models (Conv1d, BatchNorm1d on (N, C, L) and (N, C), MaxPool1d, AvgPool1d, global pooling) match onnxruntime and convert", async () => {
    const ints = (name: string, v: number[]) => ({ name, type: 7, ints: v });
    const bn = (p: string, c: number) => [
      floats(
        `${p}.s`,
        [c],
        Array.from({ length: c }, (_, i) => 1 + 0.1 * i),
      ),
      floats(
        `${p}.b`,
        [c],
        Array.from({ length: c }, (_, i) => 0.05 * i - 0.1),
      ),
      floats(
        `${p}.m`,
        [c],
        Array.from({ length: c }, (_, i) => 0.02 * i),
      ),
      floats(
        `${p}.v`,
        [c],
        Array.from({ length: c }, (_, i) => 0.8 + 0.05 * i),
      ),
    ];
    const bytes = model(
      13,
      [
        {
          name: "/c1/Conv",
          opType: "Conv",
          input: ["x", "w1", "b1"],
          output: ["c1"],
          attribute: [ints("pads", [1, 1]), ints("strides", [2]), ints("kernel_shape", [3])],
        },
        {
          name: "/bn1/BatchNormalization",
          opType: "BatchNormalization",
          input: ["c1", "bn1.s", "bn1.b", "bn1.m", "bn1.v"],
          output: ["n1"],
        },
        { name: "/r/Relu", opType: "Relu", input: ["n1"], output: ["r1"] },
        {
          name: "/p1/MaxPool",
          opType: "MaxPool",
          input: ["r1"],
          output: ["p1"],
          attribute: [ints("kernel_shape", [2]), ints("strides", [2])],
        },
        {
          name: "/c2/Conv",
          opType: "Conv",
          input: ["p1", "w2"],
          output: ["c2"],
          attribute: [ints("pads", [2, 0]), ints("dilations", [2]), { name: "group", type: 2, i: 2 }],
        },
        {
          name: "/p2/AveragePool",
          opType: "AveragePool",
          input: ["c2"],
          output: ["p2"],
          attribute: [ints("kernel_shape", [3]), ints("pads", [1, 1]), ints("strides", [1])],
        },
        { name: "/gap/GlobalAveragePool", opType: "GlobalAveragePool", input: ["p2"], output: ["g"] },
        { name: "/f/Flatten", opType: "Flatten", input: ["g"], output: ["fl"] },
        {
          name: "/bn2/BatchNormalization",
          opType: "BatchNormalization",
          input: ["fl", "bn2.s", "bn2.b", "bn2.m", "bn2.v"],
          output: ["y"],
        },
      ],
      [
        floats(
          "w1",
          [4, 2, 3],
          Array.from({ length: 24 }, (_, i) => Math.sin(i) * 0.5),
        ),
        floats("b1", [4], [0.1, -0.1, 0.2, 0]),
        ...bn("bn1", 4),
        floats(
          "w2",
          [4, 2, 3],
          Array.from({ length: 24 }, (_, i) => Math.cos(i) * 0.5),
        ),
        ...bn("bn2", 4),
      ],
      ["x", [2, 2, 20]],
      "y",
    );
    await inTempDir(async (dir) => {
      writeFileSync(path.join(dir, "tcn.onnx"), bytes);
      const m = await qb.io.loadOnnx(bytes);
      const x = tf.randomNormal([2, 2, 20], 0, 1, "float32", 15);
      const y = m.forward(x) as unknown as tf.Tensor;
      const want = await ortRun(path.join(dir, "tcn.onnx"), x);
      assert.deepEqual(y.shape, [2, 4]);
      assert.ok(relErr(y.dataSync(), want) < 1e-5, `${relErr(y.dataSync(), want)}`);
      const { ir, fq, yi } = await quantizeAndConvert(m, x);
      assert.deepEqual(
        ir.nodes.filter((n) => n.type === "Conv2d").map((n) => n.weight?.shape),
        [
          [4, 2, 1, 3],
          [4, 2, 1, 3],
        ],
      );
      assert.ok(relErr(yi.dataSync(), fq.dataSync()) < 0.02);
      tf.dispose([x, y, fq, yi]);
      m.dispose();
    });
  });

  it("variadic Sum and the norms (ReduceL2 as in F.normalize, ReduceL1, ReduceSumSquare) match onnxruntime and convert", async () => {
    const ints = (name: string, v: number[]) => ({ name, type: 7, ints: v });
    const keep0 = { name: "keepdims", type: 2, i: 0 };
    const bytes = model(
      13,
      [
        { name: "/mix/Sum", opType: "Sum", input: ["x", "c", "x"], output: ["s"] },
        { name: "/norm/ReduceL2", opType: "ReduceL2", input: ["s"], output: ["l2"], attribute: [ints("axes", [2])] },
        { name: "/norm/Clip", opType: "Clip", input: ["l2", "eps"], output: ["l2c"] },
        { name: "/norm/Div", opType: "Div", input: ["s", "l2c"], output: ["d"] },
        {
          name: "/head/ReduceL1",
          opType: "ReduceL1",
          input: ["d"],
          output: ["r1"],
          attribute: [ints("axes", [1]), keep0],
        },
        {
          name: "/head/ReduceSumSquare",
          opType: "ReduceSumSquare",
          input: ["d"],
          output: ["r2"],
          attribute: [ints("axes", [1]), keep0],
        },
        { name: "/head/Add", opType: "Add", input: ["r1", "r2"], output: ["y"] },
      ],
      [floats("c", [6], [0.5, -0.5, 1, 0, 0.25, -1]), floats("eps", [], [1e-12])],
      ["x", [1, 4, 6]],
      "y",
    );
    await inTempDir(async (dir) => {
      writeFileSync(path.join(dir, "norms.onnx"), bytes);
      const m = await qb.io.loadOnnx(bytes);
      const x = tf.randomNormal([1, 4, 6], 0, 1, "float32", 16);
      const y = m.forward(x) as unknown as tf.Tensor;
      assert.ok(relErr(y.dataSync(), await ortRun(path.join(dir, "norms.onnx"), x)) < 1e-5);
      const { ir, fq, yi } = await quantizeAndConvert(m, x, qb.qconfig.calibration8bitWeight16bitActQconfigSetter);
      assert.deepEqual(
        ir.nodes.map((n) => n.name).filter((n) => /norm|head|mix/.test(n)),
        [
          "mix.sum_const1",
          "mix",
          "mix.sum_1",
          "norm.reducel2_square",
          "norm.reducel2_sum",
          "norm.reducel2",
          "norm.clip",
          "norm.div",
          "head.reducel1_abs",
          "head.reducel1",
          "head.reducesumsquare_square",
          "head.reducesumsquare",
          "head.add",
        ],
      );
      assert.ok(relErr(yi.dataSync(), fq.dataSync()) < 0.01);
      tf.dispose([x, y, fq, yi]);
      m.dispose();
    });
  });

  it("Einsum (attention scores, projections, batched products, transposes, sums, implicit outputs) matches onnxruntime", async () => {
    await inTempDir(async (dir) => {
      const w = floats(
        "w",
        [4, 5],
        Array.from({ length: 20 }, (_, i) => Math.sin(i) * 0.5),
      );
      const cases: [string, string[], onnx.ITensorProto[], number[]][] = [
        ["bhqd,bhkd->bhqk", ["x", "x"], [], [1, 2, 3, 4]],
        ["bld,dh->blh", ["x", "w"], [w], [2, 3, 4]],
        ["bid,bjd->bij", ["x", "x"], [], [2, 3, 4]],
        ["bij,bjk->bik", ["x", "x"], [], [2, 4, 4]],
        ["ij,jk", ["x", "w"], [w], [3, 4]],
        ["bij->bji", ["x"], [], [2, 3, 4]],
        ["bij->bj", ["x"], [], [2, 3, 4]],
        ["bld,dh->bh", ["x", "w"], [w], [2, 3, 4]],
      ];
      for (const [eq, inputs, inits, shape] of cases) {
        const bytes = model(
          12,
          [
            {
              name: "/attn/Einsum",
              opType: "Einsum",
              input: inputs,
              output: ["y"],
              attribute: [{ name: "equation", type: 3, s: Buffer.from(eq) }],
            },
          ],
          inits,
          ["x", shape],
          "y",
        );
        const x = tf.randomNormal(shape, 0, 1, "float32", 17);
        const { m, y } = await importAndCompare(dir, eq, bytes, x, 1e-5);
        const { fq, yi } = await quantizeAndConvert(m, x);
        assert.ok(
          relErr(yi.dataSync(), fq.dataSync()) < 0.02,
          `${eq}: integer vs fake-quant ${relErr(yi.dataSync(), fq.dataSync())}`,
        );
        tf.dispose([x, y, fq, yi]);
        m.dispose();
      }
      await assert.rejects(
        qb.io.loadOnnx(
          model(
            12,
            [
              {
                name: "/d/Einsum",
                opType: "Einsum",
                input: ["x"],
                output: ["y"],
                attribute: [{ name: "equation", type: 3, s: Buffer.from("ii->i") }],
              },
            ],
            [],
            ["x", [3, 3]],
            "y",
          ),
        ),
        /Einsum.*repeated index \(a diagonal\)/,
      );
    });
  });

  it("1-D Resize (F.interpolate on (N, C, L)): nearest and linear, scales and sizes, match onnxruntime", async () => {
    await inTempDir(async (dir) => {
      const str = (name: string, v: string) => ({ name, type: 3, s: Buffer.from(v) });
      const x = tf.randomNormal([1, 2, 7], 0, 1, "float32", 18);
      for (const [label, attrs, inits, inputs] of [
        [
          "nearest ×2",
          [str("mode", "nearest"), str("coordinate_transformation_mode", "asymmetric"), str("nearest_mode", "floor")],
          [floats("scales", [3], [1, 1, 2])],
          ["x", "", "scales"],
        ],
        [
          "linear ×1.5",
          [str("mode", "linear"), str("coordinate_transformation_mode", "pytorch_half_pixel")],
          [floats("scales", [3], [1, 1, 1.5])],
          ["x", "", "scales"],
        ],
        [
          "linear to 4, align_corners",
          [str("mode", "linear"), str("coordinate_transformation_mode", "align_corners")],
          [floats("roi", [0], []), floats("none", [0], []), int64s("sizes", [1, 2, 4])],
          ["x", "roi", "none", "sizes"],
        ],
      ] as const) {
        const bytes = model(
          13,
          [{ name: "/up/Resize", opType: "Resize", input: [...inputs], output: ["y"], attribute: [...attrs] }],
          [...inits],
          ["x", [1, 2, 7]],
          "y",
        );
        const { m, y } = await importAndCompare(dir, label, bytes, x, 1e-6);
        assert.equal(y.rank, 3, label);
        const { fq, yi } = await quantizeAndConvert(m, x);
        assert.ok(relErr(yi.dataSync(), fq.dataSync()) < 0.01, label);
        tf.dispose([y, fq, yi]);
        m.dispose();
      }
      x.dispose();
    });
  });

  it("an unfolded Conv + BatchNormalization imports as Conv2d + BatchNorm2d, and fuseConvBn folds them", async () => {
    const w = Array.from({ length: 3 * 2 * 3 * 3 }, (_, i) => Math.cos(i) * 0.3);
    const bytes = model(
      13,
      [
        {
          name: "/conv/Conv",
          opType: "Conv",
          input: ["x", "conv.weight"],
          output: ["c"],
          attribute: [{ name: "pads", type: 7, ints: [1, 1, 1, 1] }],
        },
        {
          name: "/bn/BatchNormalization",
          opType: "BatchNormalization",
          input: ["c", "bn.weight", "bn.bias", "bn.running_mean", "bn.running_var"],
          output: ["y"],
          attribute: [{ name: "epsilon", type: 1, f: 1e-5 }],
        },
      ],
      [
        floats("conv.weight", [3, 2, 3, 3], w),
        floats("bn.weight", [3], [1.5, 0.5, 1]),
        floats("bn.bias", [3], [0.1, -0.2, 0.3]),
        floats("bn.running_mean", [3], [0.2, -0.1, 0]),
        floats("bn.running_var", [3], [0.8, 1.2, 2]),
      ],
      ["x", [1, 2, 6, 6]],
      "y",
    );
    const m = await qb.io.loadOnnx(bytes);
    assert.deepEqual(Object.keys(m.stateDict()).sort(), [
      "bn.bias",
      "bn.num_batches_tracked",
      "bn.running_mean",
      "bn.running_var",
      "bn.weight",
      "conv.weight",
    ]);
    const fused = qb.transforms.fuseConvBn(m, [["conv", "bn"]]);
    const x = tf.randomNormal([1, 2, 6, 6], 0, 1, "float32", 3);
    const [a, b] = [m.forward(x) as unknown as tf.Tensor, fused.forward(x) as unknown as tf.Tensor];
    assert.ok(relErr(b.dataSync(), a.dataSync()) < 1e-5);
    tf.dispose([x, a, b]);
    fused.dispose();
    m.dispose();
  });

  it("tensor storage: float16 and int8 raw data, doubles, an external data file", async () => {
    await inTempDir(async (dir) => {
      const half = Buffer.alloc(8);
      [1, -2, 0.5, 3].forEach((v, i) =>
        half.writeUInt16LE(v === 1 ? 0x3c00 : v === -2 ? 0xc000 : v === 0.5 ? 0x3800 : 0x4200, 2 * i),
      );
      const ext = Buffer.alloc(16);
      [10, 20, 30, 40].forEach((v, i) => ext.writeFloatLE(v, 4 * i));
      writeFileSync(path.join(dir, "weights.bin"), Buffer.concat([Buffer.alloc(8), ext]));
      const bytes = model(
        13,
        [
          { name: "cast_h", opType: "Cast", input: ["h"], output: ["hf"], attribute: [{ name: "to", type: 2, i: 1 }] },
          { name: "add_h", opType: "Add", input: ["x", "hf"], output: ["a"] },
          { name: "mul_d", opType: "Mul", input: ["a", "d"], output: ["b"] },
          { name: "add_e", opType: "Add", input: ["b", "e"], output: ["c"] },
          { name: "cast_q", opType: "Cast", input: ["q"], output: ["qf"], attribute: [{ name: "to", type: 2, i: 1 }] },
          { name: "add_q", opType: "Add", input: ["c", "qf"], output: ["y"] },
        ],
        [
          { name: "h", dims: [4], dataType: 10, rawData: half },
          { name: "d", dims: [4], dataType: 11, doubleData: [2, 2, 2, 2] },
          {
            name: "e",
            dims: [4],
            dataType: 1,
            dataLocation: 1,
            externalData: [
              { key: "location", value: "weights.bin" },
              { key: "offset", value: "8" },
              { key: "length", value: "16" },
            ],
          },
          { name: "q", dims: [4], dataType: 3, rawData: Buffer.from([1, 255, 2, 128]) },
        ],
        ["x", [1, 4]],
        "y",
      );
      const file = path.join(dir, "storage.onnx");
      writeFileSync(file, bytes);
      const m = await qb.io.loadOnnx(file);
      const y = m.forward(tf.zeros([1, 4])) as unknown as tf.Tensor;
      // (0 + half) * 2 + external + int8 (1, -1, 2, -128)
      assert.deepEqual(Array.from(y.dataSync()), [2 + 10 + 1, -4 + 20 - 1, 1 + 30 + 2, 6 + 40 - 128]);
      y.dispose();
      m.dispose();
      // without its data file the load names the tensor and the missing file
      await assert.rejects(
        qb.io.loadOnnx(bytes),
        (e: qb.QuantbookError) => e.code === "BAD_FILE" && /tensor 'e'.*weights\.bin/.test(e.message),
      );
    });
  });

  it("bad input: one error listing every unsupported op, clear errors for non-ONNX and truncated files, nothing left allocated", async () => {
    const before = tf.memory().numTensors;
    const bytes = model(
      13,
      [
        { name: "a", opType: "Celu", input: ["x"], output: ["y1"] },
        { name: "b", opType: "Celu", input: ["y1"], output: ["y2"] },
        { name: "c", opType: "TopK", input: ["y2", "k"], output: ["y3", "i3"] },
      ],
      [int64s("k", [1])],
      ["x", [1, 4]],
      "y3",
    );
    await assert.rejects(
      qb.io.loadOnnx(bytes),
      (e: qb.QuantbookError) =>
        e.code === "UNSUPPORTED" &&
        /2 op type\(s\) — Celu ×2 \(a, b\); TopK ×1 \(c\)/.test(e.message) &&
        /opset_version/.test(e.message),
    );
    const resnet = readFileSync(path.join(DIR, "resnet_opset13.onnx"));
    await assert.rejects(
      qb.io.loadOnnx(resnet.subarray(0, resnet.length / 2)),
      (e: qb.QuantbookError) => e.code === "BAD_FILE" && e.message.startsWith("loadOnnx: <bytes>:"),
    );
    const notOnnx = path.join(__dirname, "..", "..", "test", "fixtures", "random_data.pt");
    await assert.rejects(
      qb.io.loadOnnx(notOnnx),
      (e: qb.QuantbookError) => e.code === "BAD_FILE" && e.message.includes("random_data.pt"),
    );
    await assert.rejects(
      qb.io.loadOnnx("no/such/model.onnx"),
      (e: qb.QuantbookError) => e.code === "BAD_FILE" && e.message.includes("no/such/model.onnx"),
    );
    // other kinds of file are named, with the loader or export step that takes them
    const fx = (f: string) => readFileSync(path.join(__dirname, "..", "..", "test", "fixtures", f));
    const enc = (t: string) => new TextEncoder().encode(t);
    const zipWith = (entry: string) =>
      Uint8Array.from([0x50, 0x4b, 3, 4, ...new Array<number>(26).fill(0), ...enc(entry)]);
    const tflite = Uint8Array.from([0x1c, 0, 0, 0, ...enc("TFL3"), ...new Array<number>(40).fill(0)]);
    for (const [label, data, want] of [
      [
        "torch.save zip",
        fx("float-checkpoint.ckpt"),
        /is a PyTorch checkpoint \(torch\.save, zip\).*qb\.io\.loadTorch/,
      ],
      ["legacy torch.save", fx("legacy-checkpoint.ckpt"), /is a Python pickle.*qb\.io\.loadTorch/],
      ["safetensors", fx("small.safetensors"), /is a safetensors file.*qb\.io\.loadSafetensors/],
      ["TorchScript", zipWith("model/code/__torch__/model.py"), /is a TorchScript archive.*torch\.onnx\.export/],
      ["TFLite", tflite, /is a TensorFlow Lite model.*tf2onnx/],
      [
        "Git LFS pointer",
        enc("version https://git-lfs.github.com/spec/v1\noid sha256:4d7a\nsize 4455\n"),
        /is a Git LFS pointer.*git lfs pull/,
      ],
      [
        "HTML page",
        enc("<!DOCTYPE html>\n<html><head><title>404</title></head><body>Not found</body></html>\n"),
        /is a text file \(it starts "<!DOCTYPE html>"\).*not a model file/,
      ],
      ["empty file", new Uint8Array(0), /is an empty file.*fetch the file again/],
    ] as const) {
      await assert.rejects(
        qb.io.loadOnnx(Uint8Array.from(data)),
        (e: qb.QuantbookError) => e.code === "BAD_FILE" && want.test(e.message),
        label,
      );
    }
    // a graph that fails while checking it runs at load: everything it made is freed
    const badShape = model(
      13,
      [{ name: "r", opType: "Reshape", input: ["x", "shape"], output: ["y"] }],
      [int64s("shape", [3, 5])],
      ["x", [1, 4]],
      "y",
    );
    await assert.rejects(qb.io.loadOnnx(badShape), /node r/);
    assert.equal(tf.memory().numTensors, before, "a failed load leaves no tensors");
  });
});
