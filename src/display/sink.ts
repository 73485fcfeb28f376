/**
 * Where displays go. The kernel installs a sink that sends display_data / update_display_data;
 * without one (scripts, tests) the text/plain part is printed.
 *
 * ```ts
 * await qb.display.show(table);                                   // a new output
 * await qb.display.show(chart, { displayId: "plot", update: true });  // replaces it in place
 * ```
 */
import { toMimeBundle, type MimeBundle } from "./mime";

export interface DisplayOptions {
  /** Names the output so later displays with update: true replace it. */
  displayId?: string;
  update?: boolean;
}

export type DisplaySink = (bundle: MimeBundle, opts: DisplayOptions) => void;
export type ClearSink = (wait: boolean) => void;

let sink: DisplaySink | null = null;
let clearSink: ClearSink | null = null;

export function setDisplaySink(s: DisplaySink | null, clear: ClearSink | null = null): void {
  sink = s;
  clearSink = clear;
}

/** Clears the cell's output (with `wait`, when the next output arrives). No-op outside a kernel. */
export function clearOutput(wait = false): void {
  clearSink?.(wait);
}

export function displayBundle(bundle: MimeBundle, opts: DisplayOptions = {}): void {
  if (sink !== null) sink(bundle, opts);
  else if (typeof bundle["text/plain"] === "string") process.stdout.write(`${bundle["text/plain"]}\n`);
}

/** Displays a value richly (see toMimeBundle). */
export async function display(value: unknown, opts: DisplayOptions = {}): Promise<void> {
  const bundle = await toMimeBundle(value);
  if (bundle !== null) displayBundle(bundle, opts);
}
