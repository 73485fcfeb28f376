/**
 * The decision out: quantbook's op names ↔ the ONNX file's node names (setters accept either),
 * the PTQ YAML parsed back by Python with its node names found in the file, and the plugin snippet
 * executed by Python against a stub of the plugin's names.
 */
import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import * as qb from "../src";
import { assertThrows, calibrated, fixture, setup } from "./helpers";
import { PYTHON } from "./jupyterEnv";

const ONNX = path.join(__dirname, "..", "..", "test", "fixtures", "onnx", "resnet_opset13.onnx");
const dir = mkdtempSync(path.join(tmpdir(), "qb-deploy-"));

function nodeNamesOf(file: string): Map<string, string> {
  const { onnx } = require("onnx-proto") as typeof import("onnx-proto");
  const g = onnx.ModelProto.decode(readFileSync(file)).graph;
  return new Map((g?.node ?? []).map((n) => [n.name ?? "", n.opType ?? ""]));
}

describe("deploy: names, PTQ YAML, plugin snippet", () => {
  before(setup);
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("names both ways: every op of an imported graph knows its node, and setters take the node's name", async () => {
    const file = nodeNamesOf(ONNX);
    const model = await qb.io.loadOnnx(ONNX);
    const x = tf.randomNormal([1, 3, 32, 32], 0, 1, "float32", 4);
    const m = await calibrated(model, x, [qb.qconfig.defaultCalibrationQconfigSetter]);
    const names = qb.deploy.onnxNames(m);
    for (const node of Object.keys(names.byNode)) assert.ok(file.has(node), `${node} is a node of the file`);
    const convs = [...file].filter(([, t]) => t === "Conv").map(([n]) => n);
    assert.ok(convs.length > 3);
    for (const c of convs) assert.ok(names.byNode[c]?.length >= 1, `conv node ${c} has an op`);
    // a setter keyed by the file's node name
    const node = convs[1];
    const raised = await calibrated(model, x, [
      qb.qconfig.ModuleNameQconfigSetter({ [node]: qb.qconfig.getQconfig({ outDtype: qb.qint16 }) }),
      qb.qconfig.defaultCalibrationQconfigSetter,
    ]);
    const op = qb.analysis.preparedOps(raised).find((o) => o.info.name === names.byNode[node][0]);
    assert.equal(op?.output?.dtype.name, "qint16");
    await assertThrows(
      () =>
        qb.prepare(model.eval(), x, {
          qconfigSetter: [
            qb.qconfig.ModuleNameQconfigSetter({ "/no/such/Conv": qb.qconfig.getQconfig({ outDtype: qb.qint16 }) }),
          ],
          warn: false,
        }),
      /ModuleNameQconfigSetter: no op or module '\/no\/such\/Conv'; nearest: '\/conv1\/Conv'/,
    );
    // a model written with qb.nn has module paths, not node names
    const sd = (await qb.io.loadTorch(fixture("float-checkpoint.ckpt"))) as Record<string, tf.Tensor>;
    const xa = (await qb.io.loadTorch(fixture("random_data.pt"))) as tf.Tensor;
    const article = new qb.examples.SmallModel();
    article.loadStateDict(sd);
    const a = await calibrated(article, xa, [qb.qconfig.calibration8bitWeight16bitActQconfigSetter]);
    assert.throws(() => qb.deploy.onnxNames(a), /has no ONNX node names; prepare a model loaded with qb\.io\.loadOnnx/);

    // the PTQ YAML: parsed by Python, node_info names found in the file, the raised node int16
    const yaml = qb.deploy.ptqYaml(raised, {
      onnxModel: "resnet_opset13.onnx",
      inputParameters: { input_type_train: "featuremap", input_layout_train: "NCHW" },
    });
    const yamlFile = path.join(dir, "ptq.yaml");
    writeFileSync(yamlFile, yaml);
    const parsed = JSON.parse(
      execFileSync(
        PYTHON,
        ["-c", `import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))`, yamlFile],
        { encoding: "utf8" },
      ),
    );
    assert.equal(parsed.model_parameters.march, "nash-m");
    assert.equal(parsed.model_parameters.onnx_model, "resnet_opset13.onnx");
    assert.equal(parsed.input_parameters.input_layout_train, "NCHW");
    const info = parsed.model_parameters.node_info as Record<string, { ON: string; OutputType?: string }>;
    for (const n of Object.keys(info)) assert.ok(file.has(n), `node_info names ${n}, a node of the file`);
    assert.equal(info[node]?.OutputType, "int16", yaml);
    assert.equal(info[node]?.ON, "BPU");
    assert.match(yaml, new RegExp(`short form of the int16 outputs: ".*${node.replace(/[/.]/g, "\\$&")}:int16`));
    // input_parameters from the calibration data: a featuremap read as it is, named and shaped from the file's input
    const fromData = qb.deploy.ptqYaml(raised, {
      data: qb.data.fromTensors([x]),
      inputParameters: { input_type_rt: "featuremap" },
    });
    assert.match(
      fromData,
      /input_parameters:\n {2}input_name: "input"\n {2}input_shape: "1x3x32x32"\n {2}input_type_train: "featuremap"\n/,
    );
    assert.match(fromData, /norm_type: "no_preprocess"/);
    // the int8 base needs no entries: only what differs
    const base = qb.deploy.nodeInfo(m);
    assert.deepEqual(base, {});
    tf.dispose([x, xa]);
    qb.io.disposeAll(sd);
    [m, raised, a, model, article].forEach((v) => v.dispose());
  });

  it("the plugin snippet runs in Python against the plugin's names and says what differs from the base", async () => {
    const sd = (await qb.io.loadTorch(fixture("float-checkpoint.ckpt"))) as Record<string, tf.Tensor>;
    const x = (await qb.io.loadTorch(fixture("random_data.pt"))) as tf.Tensor;
    const article = new qb.examples.SmallModel();
    article.loadStateDict(sd);
    const rewritten = qb.transforms.replaceLinearWithBroadcastMulSum(article, "linear2");
    const m = await calibrated(rewritten, x, [
      qb.qconfig.FixedScaleQconfigSetter({ "linear2.mul": 7 / 32767 }),
      qb.qconfig.ModuleNameQconfigSetter({
        linear3: qb.qconfig.getQconfig({ weightDtype: qb.qint16, inDtype: qb.qint8 }),
      }),
      qb.qconfig.calibration8bitWeight16bitActQconfigSetter,
    ]);
    const snippet = qb.deploy.pluginSnippet(m);
    // a stub of the plugin's modules: get_qconfig records its arguments
    const pkg = path.join(dir, "stub", "horizon_plugin_pytorch");
    mkdirSync(path.join(pkg, "quantization"), { recursive: true });
    writeFileSync(path.join(pkg, "__init__.py"), "");
    writeFileSync(path.join(pkg, "dtype.py"), "qint8 = 'qint8'\nqint16 = 'qint16'\n");
    writeFileSync(path.join(pkg, "quantization", "__init__.py"), "");
    writeFileSync(path.join(pkg, "quantization", "qconfig.py"), "def get_qconfig(**kw):\n    return kw\n");
    writeFileSync(
      path.join(pkg, "quantization", "qconfig_template.py"),
      "class ModuleNameQconfigSetter:\n    def __init__(self, d):\n        self.d = d\n" +
        [
          "calibration_8bit_weight_16bit_act_qconfig_setter",
          "default_calibration_qconfig_setter",
          "qat_8bit_weight_16bit_act_qconfig_setter",
          "default_qat_qconfig_setter",
        ]
          .map((n) => `${n} = '${n}'\n`)
          .join(""),
    );
    const script = path.join(dir, "snippet.py");
    writeFileSync(
      script,
      snippet + "\nimport json\nprint(json.dumps({'base': qconfig_setter[1], 'byName': qconfig_setter[0].d}))\n",
    );
    const out = JSON.parse(
      execFileSync(PYTHON, [script], { encoding: "utf8", env: { ...process.env, PYTHONPATH: path.join(dir, "stub") } }),
    );
    assert.equal(out.base, "calibration_8bit_weight_16bit_act_qconfig_setter");
    assert.deepEqual(out.byName["linear2.mul"], { fix_scale: 7 / 32767, out_dtype: "qint16" });
    assert.deepEqual(out.byName.linear3, { in_dtype: "qint8", weight_dtype: "qint16" });
    // nothing else differs from the int16-activation base except the last op's float output
    assert.deepEqual(Object.keys(out.byName).sort(), ["linear2.mul", "linear3"]);
    tf.dispose(x);
    qb.io.disposeAll(sd);
    [m, article, rewritten].forEach((v) => v.dispose());
  });

  for (const [label, setter, graph] of [
    ["int8, your file", qb.qconfig.defaultCalibrationQconfigSetter, "file"],
    [
      "int16 activations (com.microsoft Q/DQ), your file",
      qb.qconfig.calibration8bitWeight16bitActQconfigSetter,
      "file",
    ],
    ["int8, quantbook's graph", qb.qconfig.defaultCalibrationQconfigSetter, "quantbook"],
    ["int16 activations, quantbook's graph", qb.qconfig.calibration8bitWeight16bitActQconfigSetter, "quantbook"],
  ] as const) {
    it(`QDQ ONNX (${label}): onnxruntime runs it within one quantization step of quantbook's fake quantization`, async (t) => {
      const model = await qb.io.loadOnnx(ONNX);
      const x = tf.randomNormal([1, 3, 32, 32], 0, 1, "float32", 6);
      const m = await calibrated(model, x, [setter]);
      const bytes = graph === "file" ? qb.deploy.qdqOnnx(m, x) : qb.deploy.qdqOnnx(m, x, { graph });
      const file = path.join(dir, `qdq_${label.replace(/\W+/g, "_")}.onnx`);
      writeFileSync(file, bytes);
      const { onnx } = require("onnx-proto") as typeof import("onnx-proto");
      const written = onnx.ModelProto.decode(bytes).graph;
      const nodes = written?.node ?? [];
      if (graph === "file") {
        // your graph: every node of the file is there, same name, same op type; inputs and outputs keep their names
        const original = onnx.ModelProto.decode(readFileSync(ONNX)).graph;
        const byName = new Map(nodes.map((n) => [n.name, n.opType]));
        for (const n of original?.node ?? []) assert.equal(byName.get(n.name), n.opType, `node ${n.name}`);
        assert.equal(
          nodes.length,
          (original?.node ?? []).length + 2 * nodes.filter((n) => n.opType === "QuantizeLinear").length,
        );
        assert.deepEqual(
          written?.output?.map((o) => o.name),
          original?.output?.map((o) => o.name),
        );
        assert.deepEqual(
          written?.input?.map((o) => o.name),
          original?.input?.map((o) => o.name),
        );
      }
      const q = nodes.filter((n) => n.opType === "QuantizeLinear").length;
      if (label.startsWith("int16"))
        assert.ok(
          nodes.some((n) => n.opType === "QuantizeLinear" && n.domain === "com.microsoft"),
          "int16 points in the com.microsoft domain",
        );
      assert.equal(q, nodes.filter((n) => n.opType === "DequantizeLinear").length);
      assert.ok(q >= qb.analysis.preparedOps(m).filter((o) => o.weight).length, `${q} QuantizeLinear nodes`);
      const ort = require("onnxruntime-node") as typeof import("onnxruntime-node");
      const session = await ort.InferenceSession.create(file, { intraOpNumThreads: 1 });
      const r = await session.run({
        [session.inputNames[0]]: new ort.Tensor("float32", x.dataSync() as Float32Array, x.shape),
      });
      const got = r[session.outputNames[0]].data as Float32Array;
      const want = (m.forward(x) as unknown as tf.Tensor).dataSync();
      // the output's own grid: the last quantized point before the float head
      let worst = 0;
      for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]));
      const range = Math.max(...Array.from(want, Math.abs));
      t.diagnostic(
        `${label}: ${q} Q/DQ pairs, largest difference from quantbook ${worst.toExponential(2)} (${((100 * worst) / range).toFixed(3)}% of the output range)`,
      );
      assert.ok(worst <= 0.02 * range, `QDQ vs quantbook: ${worst} of ${range}`);
      await session.release();
      x.dispose();
      m.dispose();
      model.dispose();
    });
  }

  it("QDQ into your file names each point it cannot place: inside a fused pattern, per channel below opset 13", async () => {
    const fixtures = path.join(__dirname, "..", "..", "test", "fixtures", "onnx");
    for (const [name, shape, why] of [
      [
        "vit_opset13.onnx",
        [1, 3, 32, 32],
        /encoder\.norm1\.var_mean\.pre_mean \(Mean\): inside node \/encoder\/norm1\/ReduceMean/,
      ],
      [
        "resnet_opset11.onnx",
        [1, 3, 32, 32],
        /conv1\.weight: a per-channel scale needs opset 13 and the file is opset 11/,
      ],
    ] as const) {
      const model = await qb.io.loadOnnx(path.join(fixtures, name));
      const x = tf.randomNormal([...shape], 0, 1, "float32", 2);
      const m = await calibrated(model, x, [qb.qconfig.defaultCalibrationQconfigSetter]);
      await assertThrows(
        () => qb.deploy.qdqOnnx(m, x),
        new RegExp(`cannot be written into .*${name.replace(".", "\\.")}`),
        why,
        /pass \{ graph: 'quantbook' \}/,
      );
      assert.ok(qb.deploy.qdqOnnx(m, x, { graph: "quantbook" }).length > 0);
      [x, m, model].forEach((v) => v.dispose());
    }
  });

  it("QDQ refuses an uncalibrated model, naming the state", async () => {
    const model = await qb.io.loadOnnx(ONNX);
    const x = tf.randomNormal([1, 3, 32, 32], 0, 1, "float32", 6);
    qb.setMarch(qb.March.NASH_M);
    const m = qb.prepare(model.eval(), x, { qconfigSetter: [qb.qconfig.defaultCalibrationQconfigSetter], warn: false });
    assert.throws(() => qb.deploy.qdqOnnx(m, x), /deploy\.qdqOnnx: the model is in FLOAT state; calibrate it/);
    x.dispose();
    m.dispose();
    model.dispose();
  });
});
