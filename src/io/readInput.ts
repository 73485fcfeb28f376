/** Reading a user's file for a loader: the backend chosen first, a missing or unreadable file an error naming it. */
import { readFile } from "node:fs/promises";
import { ensureBackend } from "../backend";
import { errors } from "../messages";

export async function readInput(loader: string, path: string): Promise<Buffer> {
  await ensureBackend();
  try {
    return await readFile(path);
  } catch (e) {
    throw errors.badFile(loader, path, `cannot read it: ${(e as Error).message}`, e);
  }
}
