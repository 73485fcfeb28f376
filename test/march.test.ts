import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import * as qb from "../src";
import { checkOpDtypes } from "../src/march/check";
import type { OpDtypes } from "../src/march/opDtypes";
import { assertNoLeak, assertThrows, calibrated, fixture, setup } from "./helpers";

const Q = ["qint8", "qint16"] as const;
const ALL = ["qint8", "qint16", "float32"] as const;
type D = (typeof ALL)[number];

function op(type: string, inputs: D[], output: D, weight?: D): OpDtypes {
  return { name: "op", type, module: "m", inputs, weight, output };
}

describe("chip rules, every op and dtype combination", () => {
  const gemms = ["Linear", "Conv2d"];
  const elementwise = ["Mul", "Add", "Sub", "Sum", "Mean", "Concat", "ReLU"];
  const luts = ["Sigmoid", "Tanh", "Exp", "Rsqrt"];

  for (const march of [qb.March.NASH_E, qb.March.NASH_M, qb.March.NASH_P]) {
    const pairBanned = march !== qb.March.NASH_P;
    it(`${march}: GEMMs (input x weight x output)`, () => {
      for (const type of gemms) {
        for (const i of ALL)
          for (const w of ALL)
            for (const o of ALL) {
              const res = checkOpDtypes([op(type, [i], o, w)], march);
              // a float weight, or float in and out, is an op left unquantized: one finding, "cpu"
              const cpu = w === "float32" || (i === "float32" && o === "float32");
              const expected = cpu
                ? 1
                : (i === "float32" ? 1 : 0) + (pairBanned && i === "qint16" && w === "qint16" ? 1 : 0);
              assert.equal(res.violations.length, expected, `${type} ${i} x ${w} -> ${o}`);
              if (cpu) assert.equal(res.violations[0].kind, "cpu", `${type} ${i} x ${w} -> ${o}`);
            }
      }
    });
    it(`${march}: Matmul operands`, () => {
      for (const a of Q)
        for (const b of Q) {
          const res = checkOpDtypes([op("Matmul", [a, b], "qint16")], march);
          assert.equal(res.ok, !(pairBanned && a === "qint16" && b === "qint16"), `${a} @ ${b}`);
        }
    });
    it(`${march}: elementwise, reductions and LUTs take int8/int16 only`, () => {
      for (const type of [...elementwise, ...luts]) {
        for (const i of ALL)
          for (const o of ALL) {
            const res = checkOpDtypes([op(type, [i, i].slice(0, type === "Mul" || type === "Add" ? 2 : 1), o)], march);
            const cpu = i === "float32" && o === "float32";
            const bad = cpu
              ? 1
              : (i === "float32" ? (type === "Mul" || type === "Add" ? 2 : 1) : 0) + (o === "float32" ? 1 : 0);
            assert.equal(res.violations.length, bad, `${type} ${i} -> ${o}`);
            assert.equal(
              res.violations.some((v) => v.kind === "cpu"),
              cpu,
              `${type} ${i} -> ${o}`,
            );
          }
      }
    });
    it(`${march}: stubs and unsupported ops`, () => {
      assert.ok(checkOpDtypes([op("QuantStub", ["float32"], "qint16")], march).ok);
      assert.equal(checkOpDtypes([op("QuantStub", ["float32"], "float32")], march).ok, false);
      assert.ok(
        checkOpDtypes([op("DeQuantStub", ["float32"], "float32")], march).ok,
        "a high-precision GEMM output may feed the DeQuantStub",
      );
      // an op type the march's data has no rule for is reported, never passed silently
      const unknown = checkOpDtypes([op("Erf", ["qint16"], "qint16")], march);
      assert.equal(unknown.ok, false);
      assert.equal(unknown.violations[0].kind, "no-rule");
      assert.match(unknown.violations[0].message, /Erf has no rule known for this march — assumed to run on the CPU/);
    });
  }

  it("the article's violation names the op, the rule and all three fixes", () => {
    const [v] = checkOpDtypes(
      [{ name: "linear2", type: "Linear", module: "linear2", inputs: ["qint16"], weight: "qint16", output: "qint16" }],
      qb.March.NASH_M,
    ).violations;
    assert.equal(v.rule, "cannot take int16 input with int16 weight");
    assert.deepEqual(v.actual, { input_0: "qint16", weight: "qint16", output: "qint16" });
    assert.match(v.message, /^linear2: NASH_M Linear cannot take int16 input with int16 weight; fix: /);
    assert.match(v.message, /inDtype: qint8/);
    assert.match(v.message, /weightDtype: qint8/);
    assert.match(v.message, /replaceLinearWithBroadcastMulSum\(model, 'linear2'\)/);
    const df = checkOpDtypes(
      [{ name: "linear2", type: "Linear", module: "linear2", inputs: ["qint16"], weight: "qint16", output: "qint16" }],
      qb.March.NASH_M,
    ).toDataFrame();
    assert.deepEqual(df.shape, [1, 6]);
    assert.deepEqual(df.columns, ["kind", "op", "op_type", "rule", "dtypes", "fixes"]);
    assert.equal((df.values[0] as unknown[])[4], "input_0=qint16 weight=qint16 output=qint16");
  });
});

let sd: Record<string, tf.Tensor>;
let x: tf.Tensor;

function meanAbs(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.mean(tf.abs(tf.sub(a, b))).dataSync()[0]);
}

const int16Linear2 = () =>
  qb.qconfig.ModuleNameQconfigSetter({ linear2: qb.qconfig.getQconfig({ weightDtype: qb.qint16 }) });
const int8InputLinear2 = () =>
  qb.qconfig.ModuleNameQconfigSetter({ linear2: qb.qconfig.getQconfig({ inDtype: qb.qint8, weightDtype: qb.qint16 }) });

describe("export, convert and perf on the article model", () => {
  before(async () => {
    await setup();
    sd = (await qb.io.loadTorch(fixture("float-checkpoint.ckpt"))) as Record<string, tf.Tensor>;
    x = (await qb.io.loadTorch(fixture("random_data.pt"))) as tf.Tensor;
  });
  after(() => {
    qb.io.disposeAll(sd);
    x.dispose();
  });

  it("the integer model is closer to the fake-quant model than that is to float", async () => {
    const model = new qb.examples.SmallModel();
    model.loadStateDict(sd);
    const floatOut = model.eval().forward(x);
    const calib = await calibrated(model, x, [qb.qconfig.calibration8bitWeight16bitActQconfigSetter]);
    const fq = calib.forward(x);
    const hb = qb.convert(qb.export(calib, x), qb.March.NASH_M);
    const y = hb.forward(x);
    const intVsFq = meanAbs(y, fq);
    const fqVsFloat = meanAbs(fq, floatOut);
    console.log(
      `# article model, mean |diff|: integer vs fake-quant ${intVsFq.toExponential(2)}, fake-quant vs float ${fqVsFloat.toExponential(2)}`,
    );
    assert.ok(intVsFq > 0, "the integer model really computes in integers");
    assert.ok(intVsFq < fqVsFloat / 10, `${intVsFq} vs ${fqVsFloat}`);
    tf.dispose([floatOut, fq, y]);
    calib.dispose();
    model.dispose();
  });

  it("convert refuses int16 input with int16 weight on NASH_M, in one error naming every violation; NASH_P accepts it", async () => {
    const model = new qb.examples.SmallModel();
    model.loadStateDict(sd);
    const calib = await calibrated(model, x, [int16Linear2(), qb.qconfig.calibration8bitWeight16bitActQconfigSetter]);
    assert.equal(qb.march.checkModel(calib, qb.March.NASH_M).violations.length, 1);
    const ir = qb.export(calib, x);
    await assertThrows(
      () => qb.convert(ir, qb.March.NASH_M),
      /convert: 1 violation\(s\) of the nash-m rules/,
      /linear2: NASH_M Linear cannot take int16 input with int16 weight/,
    );
    await assertThrows(() => qb.convert(ir, qb.March.NASH_E), /NASH_E Linear/);
    const hb = qb.convert(ir, qb.March.NASH_P);
    tf.dispose(hb.forward(x));
    calib.dispose();
    model.dispose();
  });

  it("reproduces the article's latency ordering for linear2", async () => {
    const model = new qb.examples.SmallModel();
    model.loadStateDict(sd);
    const mulSum = new qb.examples.SmallModelMulSum(sd["linear2.weight"], sd["linear2.bias"]);
    mulSum.loadStateDict(sd, { strict: false });
    const configs: [string, qb.nn.Module, qb.qconfig.QconfigSetter[]][] = [
      ["input+output int16, int8 weight", model, [qb.qconfig.calibration8bitWeight16bitActQconfigSetter]],
      [
        "weight+output int16, int8 input",
        model,
        [int8InputLinear2(), qb.qconfig.calibration8bitWeight16bitActQconfigSetter],
      ],
      ["all int16 via mul + sum", mulSum, [qb.qconfig.calibration8bitWeight16bitActQconfigSetter]],
    ];
    const lat: number[] = [];
    for (const [name, m, setters] of configs) {
      const calib = await calibrated(m, x, setters);
      const report = qb.march.perf(qb.convert(qb.export(calib, x), qb.March.NASH_M));
      const linear2 = report.ops.filter((o) => o.op.includes("linear2")).reduce((a, o) => a + o.timeUs, 0);
      console.log(
        `# ${name}: model ${report.latencyMs.toFixed(4)} ms, linear2 ${linear2.toFixed(2)} us, int16 MAC share ${(report.int16MacShare * 100).toFixed(0)}% (${report.int16Verdict})`,
      );
      lat.push(report.latencyMs);
      calib.dispose();
    }
    assert.ok(lat[0] < lat[1] && lat[1] < lat[2], `ordering ${lat}`);
    model.dispose();
    mulSum.dispose();
  });

  it("perf splits MACs by dtype pair and reports the int16 share", async () => {
    const model = new qb.examples.SmallModel();
    model.loadStateDict(sd);
    const calib = await calibrated(model, x, [
      qb.qconfig.ModuleNameQconfigSetter({
        linear1: qb.qconfig.getQconfig({ inDtype: qb.qint8 }),
        linear2: qb.qconfig.getQconfig({ inDtype: qb.qint8 }),
      }),
      qb.qconfig.calibration8bitWeight16bitActQconfigSetter,
    ]);
    const report = qb.march.perf(qb.export(calib, x), qb.March.NASH_M);
    const byOp = new Map(report.ops.map((o) => [o.op, o]));
    assert.equal(byOp.get("linear1")?.macs.qint8xqint8, 200 * 256 * 256);
    assert.equal(byOp.get("linear3")?.macs.qint16xqint8, 200 * 60 * 60);
    const share = (200 * 60 * 60) / (200 * 256 * 256 + 200 * 256 * 60 + 200 * 60 * 60);
    assert.ok(Math.abs(report.int16MacShare - share) < 1e-12);
    assert.equal(report.int16Verdict, "fine (< 10%)");
    const df = report.toDataFrame();
    assert.equal(df.shape[0], report.ops.length);
    assert.ok(df.columns.includes("MACs int16xint8"));
    calib.dispose();
    model.dispose();
  });

  it("IR round-trips through saveIr / loadIr losslessly", async () => {
    const model = new qb.examples.SmallModel();
    model.loadStateDict(sd);
    const calib = await calibrated(model, x, [qb.qconfig.calibration8bitWeight16bitActQconfigSetter]);
    const ir = qb.export(calib, x);
    const dir = mkdtempSync(path.join(tmpdir(), "qb-ir-"));
    const file = path.join(dir, "m.json");
    await qb.io.saveIr(file, ir);
    const back = await qb.io.loadIr(file);
    assert.deepEqual(back, ir);
    const [a, b] = [qb.convert(ir, qb.March.NASH_M).forward(x), qb.convert(back, qb.March.NASH_M).forward(x)];
    assert.deepEqual(Array.from(a.dataSync()), Array.from(b.dataSync()));

    const edited = (f: (j: any) => void) => {
      const j = JSON.parse(JSON.stringify(ir));
      f(j);
      writeFileSync(file, JSON.stringify(j));
    };
    edited((j) => (j.version = 2));
    await assertThrows(() => qb.io.loadIr(file), /m\.json: invalid IR: version 2 is not supported/, /re-export/);
    edited((j) => (j.nodes[3].type = "Frobnicate"));
    await assertThrows(() => qb.io.loadIr(file), /unknown op type 'Frobnicate'/);
    edited((j) => (j.nodes.find((n: any) => n.name === "linear2").inputs[0].shape = [2, 100, 255]));
    await assertThrows(
      () => qb.io.loadIr(file),
      /node linear2: input 0 has shape \[2,100,255\] but 'relu' produces \[2,100,256\]/,
    );
    edited((j) => j.nodes.find((n: any) => n.name === "linear2").weight.data.pop());
    await assertThrows(() => qb.io.loadIr(file), /node linear2: weight has 15359 values for shape \[60,256\]/);
    writeFileSync(file, "{oops");
    await assertThrows(() => qb.io.loadIr(file), /not JSON/);
    try {
      await qb.io.loadIr(file);
    } catch (e) {
      assert.ok(
        e instanceof qb.QuantbookError && e.code === "BAD_FILE" && e.cause instanceof SyntaxError,
        "a bad file error keeps the parser's error as its cause",
      );
    }
    rmSync(dir, { recursive: true });
    tf.dispose([a, b]);
    calib.dispose();
    model.dispose();
  });

  it("export needs VALIDATION; export and the integer model do not leak", async () => {
    const model = new qb.examples.SmallModel();
    model.loadStateDict(sd);
    const calib = qb.prepare(model.eval(), x, {
      qconfigSetter: [qb.qconfig.calibration8bitWeight16bitActQconfigSetter],
    });
    await assertThrows(() => qb.export(calib, x), /export: the model is in FLOAT state/, /VALIDATION/);
    qb.setFakeQuantize(calib, qb.FakeQuantState.CALIBRATION);
    await qb.calibrate(calib, [x], { onProgress: () => {} });
    await assertThrows(() => qb.export(calib, x), /CALIBRATION state/);
    qb.setFakeQuantize(calib, qb.FakeQuantState.VALIDATION);
    await assertNoLeak(() => qb.export(calib, x), 1);
    const hb = qb.convert(qb.export(calib, x), qb.March.NASH_M);
    await assertNoLeak(() => hb.forward(x).dispose(), 1);
    await assertThrows(
      () => hb.forward(tf.zeros([2, 100, 255])),
      /input 0 has shape \[2,100,255\], expected \[2,100,256\], the shape the model was exported with/,
    );
    calib.dispose();
    model.dispose();
  });
});

describe("every fix the checker suggests is valid for its op", { timeout: 300000 }, () => {
  before(setup);
  const all16: qb.qconfig.QconfigSetter = {
    setterName: "all int16",
    qconfigFor: () => qb.qconfig.getQconfig({ weightDtype: qb.qint16, outDtype: qb.qint16 }),
  };
  /** The fix as code: a qconfig for the op, or the Linear rewrite; null for advice that is not one edit. */
  function apply(
    fix: string,
    model: qb.nn.Module,
  ): { model: qb.nn.Module; setters: qb.qconfig.QconfigSetter[] } | null {
    const q =
      /ModuleNameQconfigSetter\(\{ '([^']+)': getQconfig\(\{ (inDtype|weightDtype|outDtype): (qint8|qint16) \}\) \}\)/.exec(
        fix,
      );
    if (q)
      return {
        model,
        setters: [
          qb.qconfig.ModuleNameQconfigSetter({
            [q[1]]: qb.qconfig.getQconfig({ [q[2]]: qb[q[3] as "qint8" | "qint16"] }),
          }),
          all16,
        ],
      };
    const r = /replaceLinearWithBroadcastMulSum\(model, '([^']+)'\)/.exec(fix);
    if (r) return { model: qb.transforms.replaceLinearWithBroadcastMulSum(model, r[1]), setters: [all16] };
    return null;
  }

  for (const [label, load, shape] of [
    ["the article model", async () => new qb.examples.SmallModel().eval() as qb.nn.Module, [4, 8, 256]],
    ["ResNet (ONNX: Conv and Gemm)", () => qb.io.loadOnnx(fixture("onnx/resnet_opset13.onnx")), [1, 3, 32, 32]],
    ["ViT (ONNX: MatMul operands)", () => qb.io.loadOnnx(fixture("onnx/vit_opset13.onnx")), [1, 3, 32, 32]],
  ] as const) {
    it(`${label}: each suggested edit, applied alone, clears its violation and adds none (NASH_M, everything int16)`, async () => {
      qb.setMarch(qb.March.NASH_M);
      const model = await load();
      const x = tf.randomNormal([...shape], 0, 1, "float32", 5);
      const prepared = qb.prepare(model, x, { qconfigSetter: [all16], warn: false });
      const violations = qb.march.checkModel(prepared, qb.March.NASH_M).violations.filter((v) => v.kind === "rule");
      prepared.dispose();
      assert.ok(violations.length > 0, "all-int16 breaks the int16-pair rule somewhere");
      let applied = 0;
      for (const v of violations) {
        // the rewrite is offered for a Linear only
        assert.equal(
          v.fixes.some((f) => f.includes("replaceLinearWithBroadcastMulSum")),
          v.opType === "Linear",
          `${v.op} (${v.opType}): ${v.fixes.join(" | ")}`,
        );
        for (const fix of v.fixes) {
          const edit = apply(fix, model);
          if (edit === null) continue;
          const p = qb.prepare(edit.model.eval(), x, { qconfigSetter: edit.setters, warn: false });
          const after = qb.march.checkModel(p, qb.March.NASH_M).violations.filter((w) => w.kind === "rule");
          assert.ok(
            after.every((w) => w.op !== v.op && !w.op.startsWith(`${v.module}.`)),
            `${fix}: ${after.map((w) => w.message).join("; ")}`,
          );
          assert.ok(
            after.length < violations.length,
            `${fix}: ${after.length} violations after, ${violations.length} before`,
          );
          p.dispose();
          if (edit.model !== model) edit.model.dispose();
          applied++;
        }
      }
      assert.ok(applied >= violations.length, `${applied} fixes applied for ${violations.length} violations`);
      x.dispose();
      model.dispose();
    });
  }
});
