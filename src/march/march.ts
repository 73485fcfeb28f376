/** Target BPU architectures ("march") of the Journey 6 family. */
import { errors } from "../messages";
export enum March {
  /** J6E */
  NASH_E = "nash-e",
  /** J6M */
  NASH_M = "nash-m",
  /** J6P */
  NASH_P = "nash-p",
}

let current: March | null = null;

/** Sets the target chip; set it before `prepare`, as the reference toolchain asks. */
export function setMarch(m: March): void {
  if (!Object.values(March).includes(m)) {
    throw errors.unknownMarch("setMarch", m, Object.keys(March));
  }
  current = m;
}

/** The target chip, or null when none was set. */
export function getMarch(): March | null {
  return current;
}
