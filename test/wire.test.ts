/** The wire protocol and history without Python: signing, bad input, replays, history queries. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { History } from "../kernel/history";
import { Wire } from "../kernel/wire";

const KEY = "0123456789abcdef";

describe("wire protocol", () => {
  it("round-trips a signed message and keeps identities and buffers", () => {
    const a = new Wire(KEY);
    const b = new Wire(KEY);
    const frames = [
      Buffer.from("client-id"),
      ...a.encode("execute_request", { code: "1 + 1" }, null).slice(0),
      Buffer.from("buf"),
    ];
    const m = b.decode(frames);
    assert.ok(typeof m !== "string", String(m));
    assert.equal(m.header.msg_type, "execute_request");
    assert.deepEqual(m.content, { code: "1 + 1" });
    assert.deepEqual(m.identities.map(String), ["client-id"]);
    assert.deepEqual(m.buffers.map(String), ["buf"]);
  });

  it("refuses a bad HMAC, a missing delimiter, missing parts, bad JSON and a replay", () => {
    const w = new Wire(KEY);
    const good = new Wire(KEY).encode("kernel_info_request", {}, null);
    const tampered = good.slice();
    tampered[tampered.length - 1] = Buffer.from(JSON.stringify({ evil: true }));
    assert.equal(w.decode(tampered), "bad signature");
    assert.equal(
      new Wire(KEY).decode(new Wire("another key").encode("kernel_info_request", {}, null)),
      "bad signature",
    );
    assert.equal(w.decode(good.filter((f) => String(f) !== "<IDS|MSG>")), "message without delimiter or parts");
    assert.equal(w.decode(good.slice(0, 4)), "message without delimiter or parts");
    const unsigned = new Wire("");
    const broken = unsigned.encode("kernel_info_request", {}, null);
    broken[3] = Buffer.from("{not json");
    assert.equal(unsigned.decode(broken), "unparsable JSON in a message");
    assert.ok(typeof w.decode(good) !== "string");
    assert.match(String(w.decode(good)), /^replayed message /);
    assert.throws(() => new Wire(KEY, "hmac-md5"), /unsupported signature scheme hmac-md5/);
  });
});

describe("history", () => {
  it("answers tail, range and search (glob, unique) with outputs on request", () => {
    const h = new History();
    ["const a = 1;", "a + 1", "a + 1", "console.log(a)"].forEach((code, i) => h.add(i + 1, code));
    h.add(5, "a * 6").output = "6";
    assert.deepEqual(h.query({ hist_access_type: "tail", n: 2 }), [
      [1, 4, "console.log(a)"],
      [1, 5, "a * 6"],
    ]);
    assert.deepEqual(h.query({ hist_access_type: "range", session: 0, start: 2, stop: 4 }), [
      [1, 2, "a + 1"],
      [1, 3, "a + 1"],
    ]);
    assert.deepEqual(h.query({ hist_access_type: "range", session: 7 }), []);
    assert.deepEqual(h.query({ hist_access_type: "search", pattern: "a +*", unique: true }), [[1, 3, "a + 1"]]);
    assert.deepEqual(h.query({ hist_access_type: "tail", n: 1, output: true }), [[1, 5, ["a * 6", "6"]]]);
  });
});
