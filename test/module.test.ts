import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import * as qb from "../src";
import { assertThrows, setup } from "./helpers";

class Block extends qb.nn.Module {
  fc = new qb.nn.Linear(4, 4);
  act = new qb.nn.Sigmoid();
  forward(x: tf.Tensor): tf.Tensor {
    return this.act.forward(qb.F.mul(this.fc.forward(x), 2));
  }
}

class Net extends qb.nn.Module {
  quant = new qb.nn.QuantStub();
  blocks = [new Block(), new Block()];
  head = new qb.nn.Linear(4, 3);
  dequant = new qb.nn.DeQuantStub();
  forward(x: tf.Tensor): tf.Tensor {
    let h = this.quant.forward(x);
    for (const b of this.blocks) h = b.forward(h);
    return this.dequant.forward(this.head.forward(h));
  }
}

describe("nn.Module", () => {
  before(setup);

  it("names parameters by field path, arrays included", () => {
    const net = new Net();
    assert.deepEqual(
      net.namedParameters().map(([n]) => n),
      ["blocks.0.fc.weight", "blocks.0.fc.bias", "blocks.1.fc.weight", "blocks.1.fc.bias", "head.weight", "head.bias"],
    );
    net.dispose();
  });

  it("train() and eval() set the mode everywhere and return the module", () => {
    const net = new Net();
    assert.equal(net.eval(), net);
    assert.ok(net.namedModules().every(([, m]) => !m.training));
    net.train();
    assert.ok(net.namedModules().every(([, m]) => m.training));
    net.dispose();
  });

  it("padding layers: reflect, replicate and zero padding by hand, and a reflect pad larger than the input refused", () => {
    const x = tf.tensor([1, 2, 3, 4, 5, 6], [1, 1, 2, 3]);
    // rows [1 2 3] and [4 5 6]; one column left and right, one row on top
    const reflect = new qb.nn.ReflectionPad2d([1, 1, 1, 0]).forward(x);
    assert.deepEqual(Array.from(reflect.dataSync()), [5, 4, 5, 6, 5, 2, 1, 2, 3, 2, 5, 4, 5, 6, 5]);
    const replicate = new qb.nn.ReplicationPad2d([1, 1, 1, 0]).forward(x);
    assert.deepEqual(Array.from(replicate.dataSync()), [1, 1, 2, 3, 3, 1, 1, 2, 3, 3, 4, 4, 5, 6, 6]);
    const zero = new qb.nn.ZeroPad2d([0, 1, 0, 0]).forward(x);
    assert.deepEqual(Array.from(zero.dataSync()), [1, 2, 3, 0, 4, 5, 6, 0]);
    assert.throws(
      () => new qb.nn.ReflectionPad2d(2).forward(x),
      /reflect padding \[2,2,2,2\], expected padding smaller than the padded dimensions of \[1,1,2,3\]/,
    );
    tf.dispose([x, reflect, replicate, zero]);
  });

  it("stateDict / loadStateDict round-trip", () => {
    qb.nn.manualSeed(1);
    const a = new Net();
    qb.nn.manualSeed(2);
    const b = new Net();
    const x = tf.randomNormal([3, 4], 0, 1, "float32", 5);
    const sd = a.stateDict();
    const res = b.loadStateDict(sd);
    assert.deepEqual(res, { missingKeys: [], unexpectedKeys: [] });
    assert.deepEqual(Array.from(b.forward(x).dataSync()), Array.from(a.forward(x).dataSync()));
    tf.dispose(Object.values(sd));
    a.dispose();
    b.dispose();
  });

  it("strict loading with wrong keys fails and leaves the model unchanged", async () => {
    const net = new Net();
    const before = net.stateDict();
    const sd = net.stateDict();
    const extra = tf.ones([2]);
    const bad: Record<string, tf.Tensor> = { ...sd, "head.extra": extra };
    delete bad["head.bias"];
    bad["blocks.0.fc.weight"] = tf.zerosLike(sd["blocks.0.fc.weight"]);
    await assertThrows(
      () => net.loadStateDict(bad),
      /missing keys: head\.bias/,
      /unexpected keys: head\.extra/,
      /nothing was loaded/,
      /strict: false/,
    );
    const after = net.stateDict();
    for (const k of Object.keys(before))
      assert.deepEqual(Array.from(after[k].dataSync()), Array.from(before[k].dataSync()), k);
    // non-strict loads what matches and reports the rest
    const res = net.loadStateDict(bad, { strict: false });
    assert.deepEqual(res, { missingKeys: ["head.bias"], unexpectedKeys: ["head.extra"] });
    assert.equal(net.blocks[0].fc.weight.abs().sum().dataSync()[0], 0);
    tf.dispose([
      ...Object.values(before),
      ...Object.values(after),
      ...Object.values(sd),
      extra,
      bad["blocks.0.fc.weight"],
    ]);
    net.dispose();
  });

  it("shape mismatches in a state dict name the key and both shapes", async () => {
    const net = new Net();
    const sd = net.stateDict();
    const wrong = tf.zeros([3, 5]);
    await assertThrows(
      () => net.loadStateDict({ ...sd, "head.weight": wrong }),
      /head\.weight: checkpoint shape \[3,5\], model shape \[3,4\]/,
    );
    // the advice fits the problem: sizes, not { strict: false }, which would not help
    await assertThrows(
      () => net.loadStateDict({ ...sd, "head.weight": wrong }),
      /construct it with the sizes the checkpoint has/,
    );
    assert.throws(
      () => net.loadStateDict({ ...sd, "head.weight": wrong }),
      (e: Error) => !/strict: false/.test(e.message),
    );
    tf.dispose([...Object.values(sd), wrong]);
    net.dispose();
  });

  it("a forward shape mismatch names the module path and both shapes", async () => {
    const net = new Net();
    const x = tf.ones([2, 5]);
    await assertThrows(() => net.forward(x), /blocks\.0\.fc \(Linear\)/, /input shape \[2,5\]/, /weight shape \[4,4\]/);
    // the runtime recovers: a good call works afterwards
    const ok = net.forward(tf.ones([2, 4]));
    assert.deepEqual(ok.shape, [2, 3]);
    tf.dispose([x, ok]);
    net.dispose();
  });

  it("broadcast errors in functional ops name the op path and shapes", async () => {
    class Bad extends qb.nn.Module {
      forward(a: tf.Tensor, b: tf.Tensor) {
        return qb.F.mul(a, b, { name: "broadcast_mul" });
      }
    }
    await assertThrows(
      () => new Bad().forward(tf.ones([2, 3]), tf.ones([4])),
      /broadcast_mul \(Mul\)/,
      /\[2,3\] and \[4\]/,
    );
  });
});
