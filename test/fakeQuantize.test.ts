import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import * as qb from "../src";
import { assertNoLeak, assertThrows, readJson, setup } from "./helpers";

interface Case {
  kind: "per_tensor" | "per_channel";
  dtype: "qint8" | "qint16";
  scale?: number;
  scales?: number[];
  axis?: number | undefined;
  shape: number[];
  x: number[];
  y: number[];
  y_bpu?: number[];
}

const dtypes = { qint8: qb.qint8, qint16: qb.qint16 };
const cases = readJson<Case[]>("fake_quant.json");

function firstMismatch(got: ArrayLike<number>, want: number[]): string | null {
  for (let i = 0; i < want.length; i++) {
    if (Math.fround(want[i]) !== got[i]) return `element ${i}: got ${got[i]}, PyTorch ${want[i]}`;
  }
  return null;
}

describe("fakeQuantize against PyTorch", () => {
  before(setup);

  for (const c of cases) {
    const label = c.kind === "per_tensor" ? `${c.dtype} scale ${c.scale}` : `${c.dtype} per-channel axis ${c.axis}`;
    it(`is bit-exact: ${label} (ties, saturation)`, () => {
      const x = tf.tensor(c.x, c.shape);
      const y = qb.quant.fakeQuantize(x, {
        scale: c.kind === "per_tensor" ? (c.scale as number) : (c.scales as number[]),
        dtype: dtypes[c.dtype],
        axis: c.axis,
      });
      assert.equal(firstMismatch(y.dataSync(), c.y), null);
      if (c.y_bpu) {
        const b = qb.quant.fakeQuantize(x, { scale: c.scale as number, dtype: dtypes[c.dtype], roundMode: "bpu" });
        assert.equal(firstMismatch(b.dataSync(), c.y_bpu), null);
        b.dispose();
      }
      tf.dispose([x, y]);
    });
  }

  it("rounds ties to even and saturates (hand-derived)", () => {
    const y = qb.quant.fakeQuantize(tf.tensor([0.5, 1.5, 2.5, -2.5, 200, -200, 127.4]), { scale: 1, dtype: qb.qint8 });
    assert.deepEqual(Array.from(y.dataSync()), [0, 2, 2, -2, 127, -128, 127]);
    const b = qb.quant.fakeQuantize(tf.tensor([0.5, 1.5, 2.5, -2.5]), { scale: 1, dtype: qb.qint8, roundMode: "bpu" });
    assert.deepEqual(Array.from(b.dataSync()), [1, 2, 3, -2]);
    tf.dispose([y, b]);
  });

  it("passes gradients straight through inside [qmin, qmax] only", () => {
    const x = tf.tensor([0.3, 126.9, 127.6, -128.4, -129, 500]);
    const g = tf.grad((t: tf.Tensor) => tf.sum(qb.quant.fakeQuantize(t, { scale: 1, dtype: qb.qint8 })))(x);
    assert.deepEqual(Array.from(g.dataSync()), [1, 1, 0, 1, 0, 0]);
    tf.dispose([x, g]);
  });

  it("quantizeToInt gives the integer codes", () => {
    const q = qb.quant.quantizeToInt(tf.tensor([0.26, -1.0, 9]), { scale: 0.5, dtype: qb.qint8 });
    assert.equal(q.dtype, "int32");
    assert.deepEqual(Array.from(q.dataSync()), [1, -2, 18]);
    q.dispose();
  });

  it("rejects bad scales and shapes with clear errors", async () => {
    const x = tf.ones([2, 3]);
    await assertThrows(
      () => qb.quant.fakeQuantize(x, { scale: 0, dtype: qb.qint8 }),
      /fakeQuantize/,
      /scale\[0\] is 0/,
      /> 0/,
    );
    await assertThrows(() => qb.quant.fakeQuantize(x, { scale: NaN, dtype: qb.qint8 }), /finite/);
    await assertThrows(
      () => qb.quant.fakeQuantize(x, { scale: [1, 2], dtype: qb.qint8, axis: 1 }),
      /2 per-channel scales/,
      /expected 3/,
    );
    await assertThrows(
      () => qb.quant.fakeQuantize(x, { scale: [1, 2], dtype: qb.qint8, axis: 4 }),
      /axis 4 is out of range/,
    );
    await assertThrows(() => qb.quant.fakeQuantize(tf.ones([2], "int32"), { scale: 1, dtype: qb.qint8 }), /float32/);
    x.dispose();
  });

  it("does not leak tensors", async () => {
    const x = tf.randomNormal([4, 8]);
    await assertNoLeak(() =>
      tf.dispose(qb.quant.fakeQuantize(x, { scale: [0.1, 0.2, 0.3, 0.4], dtype: qb.qint16, axis: 0 })),
    );
    await assertNoLeak(() => {
      try {
        qb.quant.fakeQuantize(x, { scale: -1, dtype: qb.qint8 });
      } catch {
        /* expected */
      }
    });
    x.dispose();
  });
});

describe("scaleFromRange (hand-derived)", () => {
  it("uses max(-min, max) / ((qmax - qmin) / 2), widened to 0, at least eps", () => {
    assert.equal(qb.quant.scaleFromRange(-41.659, 31.23, qb.qint8), 41.659 / 127.5);
    assert.equal(qb.quant.scaleFromRange(0, 15.42, qb.qint16), 15.42 / 32767.5);
    assert.equal(qb.quant.scaleFromRange(2, 3, qb.qint8), 3 / 127.5);
    assert.equal(qb.quant.scaleFromRange(0, 0, qb.qint8), qb.quant.FLOAT32_EPS);
  });
});
