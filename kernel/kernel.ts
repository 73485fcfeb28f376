/**
 * The quantbook Jupyter kernel: shell, control, stdin, iopub and heartbeat sockets; each shell
 * request is handled in turn (busy → reply → idle); control requests (interrupt, shutdown) are
 * handled at once. Cell output, displays and progress go to iopub for the request running.
 */
import * as zmq from "zeromq";
import { initBackend } from "../src/backend";
import { setDefaultProgress } from "../src/workflow/calibrate";
import { displayProgress } from "../src/display/progress";
import { setDisplaySink } from "../src/display/sink";
import { toMimeBundle, type MimeBundle } from "../src/display/mime";
import { History } from "./history";
import { Session, describeError } from "./session";
import { PROTOCOL_VERSION, Wire, type Message } from "./wire";

export interface ConnectionInfo {
  transport: string;
  ip: string;
  shell_port: number;
  iopub_port: number;
  stdin_port: number;
  control_port: number;
  hb_port: number;
  key: string;
  signature_scheme: string;
}

/** Serialises sends on one zmq socket (v6 sockets refuse concurrent sends). */
class Outbox {
  private chain: Promise<void> = Promise.resolve();
  constructor(private readonly socket: { send(frames: Buffer[]): Promise<void> }) {}
  send(frames: Buffer[]): Promise<void> {
    this.chain = this.chain.then(() => this.socket.send(frames)).catch((e) => log(`send failed: ${e}`));
    return this.chain;
  }
}

function log(s: string): void {
  // the kernel's own diagnostics go to the launcher's stderr, never into a cell's output
  originalStderrWrite(`[quantbook kernel] ${s}\n`);
}
const originalStderrWrite = process.stderr.write.bind(process.stderr) as (s: string) => boolean;

const VERSION = (require("../../package.json") as { version: string }).version;

export class Kernel {
  private readonly wire: Wire;
  private readonly shell = new zmq.Router();
  private readonly control = new zmq.Router();
  private readonly stdin = new zmq.Router();
  private readonly iopub = new zmq.Publisher();
  private readonly hb = new zmq.Reply();
  private readonly out: { shell: Outbox; control: Outbox; iopub: Outbox };
  private readonly session: Session;
  private readonly history = new History();
  private executionCount = 0;
  /** The request whose cell is running (or ran last): where output goes. */
  private current: Message | null = null;
  private queue: Promise<void> = Promise.resolve();
  /** Shell messages received so far, and the count before which queued cells are aborted. */
  private received = 0;
  private abortBefore = 0;
  private closing = false;

  constructor(
    private readonly conn: ConnectionInfo,
    rootDir: string,
  ) {
    this.wire = new Wire(conn.key, conn.signature_scheme);
    this.out = { shell: new Outbox(this.shell), control: new Outbox(this.control), iopub: new Outbox(this.iopub) };
    this.session = new Session(rootDir);
  }

  private addr(port: number): string {
    return `${this.conn.transport}://${this.conn.ip}:${port}`;
  }

  async start(): Promise<void> {
    await Promise.all([
      this.shell.bind(this.addr(this.conn.shell_port)),
      this.control.bind(this.addr(this.conn.control_port)),
      this.stdin.bind(this.addr(this.conn.stdin_port)),
      this.iopub.bind(this.addr(this.conn.iopub_port)),
      this.hb.bind(this.addr(this.conn.hb_port)),
    ]);
    this.captureOutput();
    setDisplaySink(
      (bundle, opts) => this.sendDisplay(bundle, opts.displayId, Boolean(opts.update)),
      (wait) => this.publish("clear_output", { wait }, this.current),
    );
    setDefaultProgress(displayProgress());
    const tslabJupyter = require("tslab/dist/jupyter") as { lastWriteDisplayData: unknown };
    tslabJupyter.lastWriteDisplayData = (data: { data: MimeBundle; transient?: { display_id?: string } }, update: boolean) =>
      this.sendDisplay(data.data, data.transient?.display_id, update);
    void this.heartbeat();
    void this.serve(this.shell, (m) => this.enqueue(m));
    void this.serve(this.control, (m) => this.handle(m, this.out.control));
    this.publish("status", { execution_state: "starting" }, null);
    await initBackend();
    this.session.warmUp();
  }

  private async heartbeat(): Promise<void> {
    for await (const frames of this.hb) await this.hb.send(frames);
  }

  private async serve(socket: zmq.Router, onMessage: (m: Message) => void): Promise<void> {
    for await (const frames of socket) {
      const m = this.wire.decode(frames as Buffer[]);
      if (typeof m === "string") log(`dropped a message: ${m}`);
      else onMessage(m);
    }
  }

  private enqueue(m: Message): void {
    const seq = ++this.received;
    this.queue = this.queue.then(() =>
      m.header.msg_type === "execute_request" && seq <= this.abortBefore ? this.abort(m) : this.handle(m, this.out.shell),
    );
  }

  /** A cell queued behind one that failed with stop_on_error: not run, as the spec asks. */
  private abort(req: Message): void {
    this.publish("status", { execution_state: "busy" }, req);
    this.reply(this.out.shell, req, "execute_reply", { status: "aborted", execution_count: this.executionCount }, { status: "aborted" });
    this.publish("status", { execution_state: "idle" }, req);
  }

  publish(type: string, content: unknown, parent: Message | null): void {
    void this.out.iopub.send(this.wire.encode(type, content, parent));
  }

  private reply(outbox: Outbox, req: Message, type: string, content: unknown, metadata: Record<string, unknown> = {}): void {
    void outbox.send(this.wire.encode(type, content, req, req.identities, metadata));
  }

  private sendDisplay(bundle: MimeBundle, displayId: string | undefined, update: boolean): void {
    const transient = displayId ? { display_id: displayId } : {};
    this.publish(update && displayId ? "update_display_data" : "display_data", { data: bundle, metadata: {}, transient }, this.current);
  }

  /** Cell output (console.log, process.stdout.write) becomes stream messages of the running request. */
  private captureOutput(): void {
    for (const name of ["stdout", "stderr"] as const) {
      const stream = process[name];
      stream.write = ((chunk: string | Uint8Array, enc?: unknown, cb?: unknown) => {
        const text = typeof chunk === "string" ? chunk : Buffer.from(chunk).toString(typeof enc === "string" ? (enc as BufferEncoding) : "utf8");
        if (this.current !== null && text.length > 0) this.publish("stream", { name, text }, this.current);
        const done = typeof enc === "function" ? enc : cb;
        if (typeof done === "function") (done as () => void)();
        return true;
      }) as typeof stream.write;
    }
  }

  private async handle(req: Message, outbox: Outbox): Promise<void> {
    this.publish("status", { execution_state: "busy" }, req);
    try {
      await this.dispatch(req, outbox);
    } catch (e) {
      const err = describeError(e);
      log(`error handling ${req.header.msg_type}: ${err.evalue}`);
      this.reply(outbox, req, req.header.msg_type.replace(/_request$/, "_reply"), { status: "error", ...err });
    } finally {
      this.publish("status", { execution_state: "idle" }, req);
    }
  }

  private async dispatch(req: Message, outbox: Outbox): Promise<void> {
    const c = req.content as Record<string, unknown>;
    switch (req.header.msg_type) {
      case "kernel_info_request":
        return this.reply(outbox, req, "kernel_info_reply", {
          status: "ok",
          protocol_version: PROTOCOL_VERSION,
          implementation: "quantbook",
          implementation_version: VERSION,
          language_info: {
            name: "typescript",
            version: (require("@tslab/typescript-for-tslab") as { version: string }).version,
            mimetype: "text/typescript",
            file_extension: ".ts",
            codemirror_mode: { name: "javascript", typescript: true },
            pygments_lexer: "typescript",
          },
          banner: `quantbook ${VERSION}: TypeScript quantization lab for Horizon J6 (tslab-based kernel, Node ${process.version})`,
          help_links: [{ text: "quantbook README", url: "https://www.npmjs.com/package/quantbook" }],
          debugger: false,
        });
      case "execute_request":
        return this.execute(req, outbox, c);
      case "is_complete_request":
        return this.reply(outbox, req, "is_complete_reply", this.session.isComplete(String(c.code ?? "")));
      case "complete_request": {
        const code = String(c.code ?? "");
        const r = this.session.complete(code, Number(c.cursor_pos ?? code.length));
        return this.reply(outbox, req, "complete_reply", { status: "ok", matches: r.candidates, cursor_start: r.start, cursor_end: r.end, metadata: {} });
      }
      case "inspect_request": {
        const code = String(c.code ?? "");
        const text = this.session.inspect(code, Number(c.cursor_pos ?? code.length));
        return this.reply(outbox, req, "inspect_reply", { status: "ok", found: text !== null, data: text === null ? {} : { "text/plain": text }, metadata: {} });
      }
      case "history_request":
        return this.reply(outbox, req, "history_reply", { status: "ok", history: this.history.query(c) });
      case "comm_info_request":
        return this.reply(outbox, req, "comm_info_reply", { status: "ok", comms: {} });
      case "comm_open":
        // no comm targets: close it, as the spec asks for unknown targets
        this.publish("comm_close", { comm_id: c.comm_id, data: {} }, req);
        return;
      case "comm_msg":
      case "comm_close":
        return;
      case "interrupt_request":
        this.session.interrupt();
        return this.reply(outbox, req, "interrupt_reply", { status: "ok" });
      case "shutdown_request":
        this.reply(outbox, req, "shutdown_reply", { status: "ok", restart: Boolean(c.restart) });
        this.shutdown();
        return;
      default:
        log(`unsupported message type ${req.header.msg_type}`);
    }
  }

  private async execute(req: Message, outbox: Outbox, c: Record<string, unknown>): Promise<void> {
    const code = String(c.code ?? "");
    const silent = Boolean(c.silent);
    const store = !silent && c.store_history !== false;
    if (store) this.executionCount++;
    const count = this.executionCount;
    if (!silent) this.publish("execute_input", { code, execution_count: count }, req);
    const entry = store ? this.history.add(count, code) : null;
    this.current = req;
    let outcome = await this.session.execute(code);
    let bundle: MimeBundle | null = null;
    if (outcome.ok && outcome.hasValue) {
      try {
        bundle = await toMimeBundle(outcome.value);
      } catch (e) {
        outcome = { ok: false, ...describeError(e) };
      }
    }
    if (outcome.ok) {
      if (bundle !== null && !silent) {
        this.publish("execute_result", { execution_count: count, data: bundle, metadata: {} }, req);
        if (entry) entry.output = typeof bundle["text/plain"] === "string" ? bundle["text/plain"] : null;
      }
      this.reply(outbox, req, "execute_reply", { status: "ok", execution_count: count, payload: [], user_expressions: {} }, { status: "ok" });
    } else {
      const { ename, evalue, traceback } = outcome;
      if (!silent) this.publish("error", { ename, evalue, traceback }, req);
      // cells already queued behind this one are aborted (stop_on_error defaults to true)
      if (c.stop_on_error !== false) this.abortBefore = this.received;
      this.reply(outbox, req, "execute_reply", { status: "error", execution_count: count, ename, evalue, traceback }, { status: "error" });
    }
  }

  interrupt(): void {
    this.session.interrupt();
  }

  shutdown(): void {
    if (this.closing) return;
    this.closing = true;
    setTimeout(() => {
      this.session.close();
      for (const s of [this.shell, this.control, this.stdin, this.iopub, this.hb]) s.close();
      process.exit(0);
    }, 50);
  }
}
