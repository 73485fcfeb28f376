/**
 * Cell output written to stdout / stderr, coalesced into few stream messages: text is buffered
 * and sent every few milliseconds, when the buffer passes a size, before any other output of the
 * cell and when the cell ends — so every byte arrives, in order, without a message per write.
 * A cell that prints more than `maxBytes` gets that much and a note saying how much was cut.
 */

export type StreamName = "stdout" | "stderr";

export interface StreamSink {
  (name: StreamName, text: string): void;
}

export interface StreamOptions {
  /** Send at the latest this long after the first buffered write (ms). */
  flushMs?: number;
  /** Send when this many characters are buffered. */
  chunkChars?: number;
  /** Bytes a cell may print before the rest is cut (default 8 MiB; QUANTBOOK_MAX_OUTPUT_BYTES). */
  maxBytes?: number;
}

export const DEFAULT_MAX_OUTPUT_BYTES = 8 * 1024 * 1024;

function envMax(): number {
  const v = Number(process.env.QUANTBOOK_MAX_OUTPUT_BYTES);
  return Number.isFinite(v) && v > 0 ? v : DEFAULT_MAX_OUTPUT_BYTES;
}

function mb(n: number): string {
  return `${(n / (1024 * 1024)).toFixed(1)} MB`;
}

export class StreamBuffer {
  private parts: { name: StreamName; text: string }[] = [];
  private chars = 0;
  private timer: NodeJS.Timeout | null = null;
  private sent = 0;
  private cut = 0;
  private readonly flushMs: number;
  private readonly chunkChars: number;
  readonly maxBytes: number;

  constructor(
    private readonly sink: StreamSink,
    opts: StreamOptions = {},
  ) {
    this.flushMs = opts.flushMs ?? 20;
    this.chunkChars = opts.chunkChars ?? 64 * 1024;
    this.maxBytes = opts.maxBytes ?? envMax();
  }

  write(name: StreamName, text: string): void {
    if (text.length === 0) return;
    const bytes = Buffer.byteLength(text);
    if (this.sent + bytes > this.maxBytes) {
      const room = this.maxBytes - this.sent;
      if (room > 0) {
        const head = Buffer.from(text).subarray(0, room).toString();
        this.push(name, head);
        this.sent = this.maxBytes;
        this.cut += bytes - Buffer.byteLength(head);
      } else {
        this.cut += bytes;
      }
      return;
    }
    this.sent += bytes;
    this.push(name, text);
  }

  private push(name: StreamName, text: string): void {
    const last = this.parts[this.parts.length - 1];
    if (last && last.name === name) last.text += text;
    else this.parts.push({ name, text });
    this.chars += text.length;
    if (this.chars >= this.chunkChars) this.flush();
    else this.timer ??= setTimeout(() => this.flush(), this.flushMs);
  }

  /** Sends everything buffered now, one message per run of the same stream. */
  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const parts = this.parts;
    this.parts = [];
    this.chars = 0;
    for (const p of parts) this.sink(p.name, p.text);
  }

  /** Flushes and, if output was cut, sends the note; then starts counting for the next cell. */
  endCell(): void {
    if (this.cut > 0) {
      this.parts.push({
        name: "stderr",
        text: `\n[quantbook: output truncated — this cell printed ${mb(this.sent + this.cut)}; the first ${mb(this.maxBytes)} are shown and ${mb(this.cut)} were cut. Write large results to a file instead, or set QUANTBOOK_MAX_OUTPUT_BYTES.]\n`,
      });
    }
    this.flush();
    this.sent = 0;
    this.cut = 0;
  }
}
