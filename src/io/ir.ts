import { readFile, writeFile } from "node:fs/promises";
import type { Ir } from "../ir/types";
import { validateIr } from "../ir/validate";

/** Writes an IR as JSON (numbers round-trip exactly). */
export async function saveIr(path: string, ir: Ir): Promise<void> {
  validateIr(ir, "saveIr");
  await writeFile(path, JSON.stringify(ir));
}

/** Reads and validates an IR written by saveIr. */
export async function loadIr(path: string): Promise<Ir> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (e) {
    throw new Error(`loadIr: cannot read ${path}: ${(e as Error).message}`);
  }
  let ir: unknown;
  try {
    ir = JSON.parse(text);
  } catch {
    throw new Error(`loadIr: ${path} is not JSON (expected a file written by qb.io.saveIr)`);
  }
  validateIr(ir, `loadIr: ${path}`);
  return ir;
}
