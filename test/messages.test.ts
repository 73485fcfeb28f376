/**
 * Messages by situation: each user-facing error comes from one builder of src/messages.ts. These
 * cases raise a situation through the public API and compare the error with the builder's own
 * output (code and message), so a wording lives in one place.
 */
import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import * as qb from "../src";
import { errors } from "../src/messages";
import { PAD_MODES } from "../src/ops/layout";
import { setup } from "./helpers";

/** `e` is exactly `want`: same class, code and message. */
const same = (want: qb.QuantbookError) => (e: unknown) => {
  assert.ok(e instanceof qb.QuantbookError, `a QuantbookError, got ${String(e)}`);
  assert.equal(e.code, want.code);
  assert.equal(e.message, want.message);
  return true;
};
const throwsAs = (fn: () => unknown, want: qb.QuantbookError) => assert.throws(fn, same(want));

describe("messages by situation", () => {
  before(setup);

  it("errors.coded is gone: every builder makes a QuantbookError with a code", () => {
    assert.equal((errors as Record<string, unknown>).coded, undefined);
    for (const [name, build] of Object.entries(errors)) assert.equal(typeof build, "function", name);
  });

  it("a choice outside its list, a range, an axis, a tensor: the builder's wording, wherever it is raised", async () => {
    const x = tf.ones([1, 2, 3, 3]);
    throwsAs(
      () => qb.F.pad(x, [1, 1], 0, { mode: "reflekt" as never }),
      errors.notOneOf("pad", "mode", "reflekt", PAD_MODES),
    );
    assert.match(errors.notOneOf("pad", "mode", "reflekt", PAD_MODES).message, /nearest: 'reflect'/);
    throwsAs(
      () => qb.F.pow(x, tf.scalar(2) as unknown as number),
      errors.unsupported("pow", "a tensor exponent", "pass the exponent as a number (a constant)"),
    );
    throwsAs(
      () => new qb.quant.PercentileObserver({ dtype: qb.qint8, percentile: 30 }),
      errors.outOfRange("PercentileObserver", "percentile", 30, "in (50, 100], e.g. 99.99"),
    );
    throwsAs(
      () => qb.quant.fakeQuantize(x, { scale: [1, 1], dtype: qb.qint8, axis: 7 }),
      errors.badAxis("fakeQuantize", "axis", 7, [1, 2, 3, 3]),
    );
    await assert.rejects(
      qb.io.saveSafetensors("/tmp/never.safetensors", { a: 3 as unknown as tf.Tensor }),
      same(errors.notATensor("saveSafetensors", "'a'", 3)),
    );
    throwsAs(
      () => qb.F.add(2, 3),
      errors.invalidArgument(
        "add",
        "both operands are numbers",
        "pass at least one tensor (compute with two numbers in plain JavaScript)",
      ),
    );
    x.dispose();
  });

  it("a module of the wrong kind names the path and what is there", () => {
    const m = new qb.nn.Sequential(new qb.nn.Linear(4, 3), new qb.nn.ReLU());
    throwsAs(
      () => qb.transforms.fuseConvBn(m, [["0", "1"]]),
      errors.wrongModule("fuseConvBn", "0", m.namedModules()[1][1], "Conv2d"),
    );
    throwsAs(
      () => qb.transforms.replaceLinearWithBroadcastMulSum(m, "1"),
      errors.wrongModule("replaceLinearWithBroadcastMulSum", "1", m.namedModules()[2][1], "Linear", ["0"]),
    );
    m.dispose();
  });
});
