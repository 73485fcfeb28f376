import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import * as qb from "../src";
import { assertThrows, assertWithinOneStep, calibrated, fixture, maxAbsDiff, setup } from "./helpers";

class ConvNet extends qb.nn.Module {
  quant = new qb.nn.QuantStub();
  conv1 = new qb.nn.Conv2d(3, 8, 3, { stride: 1, padding: 1 });
  bn1 = new qb.nn.BatchNorm2d(8);
  relu = new qb.nn.ReLU();
  conv2 = new qb.nn.Conv2d(8, 4, [3, 2], { stride: 2, padding: [1, 0], dilation: [1, 2] });
  dequant = new qb.nn.DeQuantStub();
  forward(x: tf.Tensor) {
    return this.dequant.forward(
      this.conv2.forward(this.relu.forward(this.bn1.forward(this.conv1.forward(this.quant.forward(x))))),
    );
  }
}

describe("Conv2d", () => {
  let saved: { state_dict: Record<string, tf.Tensor>; input: tf.Tensor; output: tf.Tensor };
  before(async () => {
    await setup();
    saved = (await qb.io.loadTorch(fixture("convnet.pt"))) as typeof saved;
  });

  it("matches PyTorch's Conv2d (stride, padding, dilation) and BatchNorm2d within 1e-5 from its state dict", () => {
    const m = new ConvNet();
    assert.deepEqual(m.loadStateDict(saved.state_dict), { missingKeys: [], unexpectedKeys: [] });
    const y = m.eval().forward(saved.input);
    assert.deepEqual(y.shape, saved.output.shape);
    assert.ok(maxAbsDiff(y, saved.output) <= 1e-5, `max diff ${maxAbsDiff(y, saved.output)}`);
    y.dispose();
  });

  it("quantizes weights per output channel and runs in integers within one output step", async () => {
    const m = new ConvNet();
    m.loadStateDict(saved.state_dict);
    const c = await calibrated(m, saved.input, [qb.qconfig.defaultCalibrationQconfigSetter]);
    const op = qb.analysis.preparedOps(c).find((o) => o.info.name === "conv1");
    assert.equal(op?.weight?.axis, 0);
    assert.equal(op?.weight?.scale()?.length, 8);
    assert.equal(op?.info.flops, 2 * 8 * 9 * 10 * 3 * 3 * 3);
    const ir = qb.export(c, saved.input);
    const hb = qb.convert(ir, qb.March.NASH_M);
    const fq = c.forward(saved.input).dataSync();
    const y = hb.forward(saved.input).dataSync();
    // conv2 feeds the DeQuantStub: high precision, so compare against its input step
    const step = (ir.nodes.find((n) => n.name === "relu")?.output.quant.scale as number[])[0];
    assertWithinOneStep(y, fq, step);
    assert.ok(qb.march.perf(hb).ops.find((o) => o.op === "conv1")?.macs.qint8xqint8 === 2 * 8 * 9 * 10 * 3 * 3 * 3);
  });

  it("fuseConvBn folds the BatchNorm into the conv: same float output, one op fewer, integer model still within one step", async () => {
    const m = new ConvNet();
    m.loadStateDict(saved.state_dict);
    const fused = qb.transforms.fuseConvBn(m, [["conv1", "bn1"]]);
    assert.ok(fused.bn1 instanceof qb.nn.Identity);
    assert.ok(m.bn1 instanceof qb.nn.BatchNorm2d, "the original model is unchanged");
    const [a, b] = [m.eval().forward(saved.input), fused.eval().forward(saved.input)];
    assert.ok(maxAbsDiff(a, b) <= 1e-5, `max diff ${maxAbsDiff(a, b)}`);
    const unfused = await calibrated(m, saved.input, [qb.qconfig.defaultCalibrationQconfigSetter]);
    const c = await calibrated(fused, saved.input, [qb.qconfig.defaultCalibrationQconfigSetter]);
    assert.equal(qb.analysis.preparedOps(c).length, qb.analysis.preparedOps(unfused).length - 1);
    for (const model of [unfused, c]) {
      const ir = qb.export(model, saved.input);
      const y = qb.convert(ir, qb.March.NASH_M).forward(saved.input).dataSync();
      const fq = model.forward(saved.input).dataSync();
      const step = (ir.nodes.find((n) => n.name === "relu")?.output.quant.scale as number[])[0];
      assertWithinOneStep(y, fq, step);
    }
    await assertThrows(() => qb.transforms.fuseConvBn(m, [["conv2", "bn1"]]), /bn1 has 8 channels but conv2 outputs 4/);
    await assertThrows(() => qb.transforms.fuseConvBn(m, [["relu", "bn1"]]), /'relu' is a ReLU, expected a Conv2d/);
    tf.dispose([a, b]);
  });

  it("grouped and depthwise convolutions match PyTorch and run in integers", async () => {
    class GroupNet extends qb.nn.Module {
      quant = new qb.nn.QuantStub();
      grouped = new qb.nn.Conv2d(4, 6, 3, { padding: 1, groups: 2 });
      relu = new qb.nn.ReLU();
      depthwise = new qb.nn.Conv2d(6, 6, 3, { stride: 2, padding: 1, groups: 6, bias: false });
      dequant = new qb.nn.DeQuantStub();
      forward(x: tf.Tensor) {
        return this.dequant.forward(
          this.depthwise.forward(this.relu.forward(this.grouped.forward(this.quant.forward(x)))),
        );
      }
    }
    const g = (await qb.io.loadTorch(fixture("groupnet.pt"))) as typeof saved;
    const m = new GroupNet();
    assert.deepEqual(m.loadStateDict(g.state_dict), { missingKeys: [], unexpectedKeys: [] });
    const y = m.eval().forward(g.input);
    assert.ok(maxAbsDiff(y, g.output) <= 1e-5, `max diff ${maxAbsDiff(y, g.output)}`);
    const c = await calibrated(m, g.input, [qb.qconfig.defaultCalibrationQconfigSetter]);
    const ir = qb.export(c, g.input);
    const yi = qb.convert(ir, qb.March.NASH_M).forward(g.input).dataSync();
    const fq = c.forward(g.input).dataSync();
    const step = (ir.nodes.find((n) => n.name === "relu")?.output.quant.scale as number[])[0];
    assertWithinOneStep(yi, fq, step);
    y.dispose();
  });

  it("refuses bad groups and shape mismatches with clear errors", async () => {
    await assertThrows(
      () => new qb.nn.Conv2d(4, 6, 3, { groups: 4 }),
      /groups = 4, expected a positive integer dividing inChannels \(4\) and outChannels \(6\)/,
    );
    const m = new ConvNet();
    await assertThrows(
      () => m.forward(tf.zeros([1, 4, 8, 8])),
      /conv1 \(Conv2d\)/,
      /expected NCHW input with 3 channels/,
    );
  });
});
