import { readFile, writeFile } from "node:fs/promises";
import type { Ir } from "../ir/types";
import { validateIr } from "../ops/validateIr";
import { errors } from "../messages";

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
    throw errors.badFile("loadIr", path, `cannot read it: ${(e as Error).message}`, e);
  }
  let ir: unknown;
  try {
    ir = JSON.parse(text);
  } catch (e) {
    throw errors.badFile("loadIr", path, "not JSON (expected a file written by qb.io.saveIr)", e);
  }
  validateIr(ir, `loadIr: ${path}`);
  return ir;
}
