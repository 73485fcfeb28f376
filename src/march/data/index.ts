import { March } from "../march";
import type { MarchSpec } from "../spec";
import { nashE } from "./nashE";
import { nashM } from "./nashM";
import { nashP } from "./nashP";
import { errors } from "../../messages";

const SPECS: Record<March, MarchSpec> = { [March.NASH_E]: nashE, [March.NASH_M]: nashM, [March.NASH_P]: nashP };

/** The rule and perf table of a march. */
export function marchSpec(march: March): MarchSpec {
  const spec = SPECS[march];
  if (spec === undefined) {
    throw errors.unknownMarch("marchSpec", march, Object.keys(March));
  }
  return spec;
}
