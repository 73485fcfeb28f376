/** A bounded sample of loader fuzzing in every test run (`npm run fuzz` runs thousands). */
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { setup } from "./helpers";
import { FORMATS, fuzzFormat } from "./fuzzLoaders";

const COUNT = Number(process.env.QUANTBOOK_FUZZ_COUNT ?? 150);

describe("loaders never break", { timeout: 600000 }, () => {
  before(setup);
  for (const format of FORMATS) {
    it(`${format}: ${COUNT} mutated files load or fail with an error naming the file`, async () => {
      const r = await fuzzFormat(format, COUNT);
      console.log(
        `# fuzz ${format}: ${r.tried} mutations, ${r.loaded} loaded, ${r.clearErrors} clear errors, slowest ${r.slowestMs.toFixed(0)} ms, most held ${r.maxRetainedMB.toFixed(1)} MB`,
      );
      assert.deepEqual(r.bad.slice(0, 10), []);
    });
  }
});
