/**
 * The quantbook Jupyter kernel: shell, control, stdin, iopub and heartbeat sockets; each shell
 * request is handled in turn (busy → reply → idle); control requests are served by a worker
 * thread (kernel/controlWorker.ts), so an interrupt is answered even while a cell is busy.
 * Cell output, displays and progress go to iopub for the request running; stream output is
 * coalesced (kernel/streams.ts). Errors no cell catches — a rejected promise nobody awaited, a
 * throw in a timer — are reported, never fatal.
 */
import * as path from "node:path";
import { Worker } from "node:worker_threads";
import * as zmq from "zeromq";
import { initBackend, repairEngine } from "../src/backend";
import { setDefaultProgress } from "../src/util/progress";
import { clearInterrupt, requestInterrupt, useInterruptFlag } from "../src/util/interrupt";
import { runningOperations } from "../src/util/operations";
import { displayProgress } from "../src/display/progress";
import { setDisplaySink } from "../src/display/sink";
import { toMimeBundle, type MimeBundle } from "../src/display/mime";
import type { ControlWorkerData, ToMain } from "./controlWorker";
import { cellContext } from "./executor";
import { History } from "./history";
import { Session, describeError } from "./session";
import { StreamBuffer, type StreamName } from "./streams";
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

/** How long an interrupt waits for the cell to stop by itself before it sends SIGINT (ms). */
const INTERRUPT_GRACE_MS = 1500;

export class Kernel {
  private readonly wire: Wire;
  private readonly shell = new zmq.Router();
  private readonly stdin = new zmq.Router();
  // no high-water mark: a publisher drops messages past it, and cell output must not be lost
  private readonly iopub = new zmq.Publisher({ sendHighWaterMark: 0 });
  private readonly hb = new zmq.Reply();
  private readonly out: { shell: Outbox; control: Outbox; iopub: Outbox };
  private control: Worker | null = null;
  /** [0] interrupt requested, [1] running cell (0: idle); shared with the control worker. */
  private readonly flags = new Int32Array(new SharedArrayBuffer(8));
  private readonly streams = new StreamBuffer((name, text) => this.send("stream", { name, text }, this.current));
  /** The cell running now (0: none), and output or errors that arrived while none was. */
  private running = 0;
  private lastOrigin: number | undefined = undefined;
  private held: { name: StreamName; text: string }[] = [];
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
    this.out = {
      shell: new Outbox(this.shell),
      control: new Outbox({ send: async (frames) => this.control?.postMessage({ send: frames }) }),
      iopub: new Outbox(this.iopub),
    };
    this.session = new Session(rootDir);
    useInterruptFlag(this.flags);
  }

  private addr(port: number): string {
    return `${this.conn.transport}://${this.conn.ip}:${port}`;
  }

  async start(): Promise<void> {
    this.control = this.startControl();
    await Promise.all([
      this.shell.bind(this.addr(this.conn.shell_port)),
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
    tslabJupyter.lastWriteDisplayData = (
      data: { data: MimeBundle; transient?: { display_id?: string } },
      update: boolean,
    ) => this.sendDisplay(data.data, data.transient?.display_id, update);
    // requests that arrive while the backend starts wait for it (quantbook needs it to load)
    const ready = initBackend().then(() => this.session.warmUp());
    this.queue = ready.catch((e) => log(`the tensor backend did not start: ${describeError(e).evalue}`));
    void this.heartbeat();
    void this.serve(this.shell, (m) => this.enqueue(m));
    this.publish("status", { execution_state: "starting" }, null);
    await ready;
  }

  private startControl(): Worker {
    const data: ControlWorkerData = {
      address: this.addr(this.conn.control_port),
      key: this.conn.key,
      scheme: this.conn.signature_scheme,
      shared: this.flags.buffer as SharedArrayBuffer,
      graceMs: INTERRUPT_GRACE_MS,
    };
    const worker = new Worker(path.join(__dirname, "controlWorker.js"), { workerData: data });
    worker.on("message", (m: ToMain) => {
      if ("log" in m) log(m.log);
      else if ("interrupted" in m) this.interrupt();
      else {
        const req = this.wire.decode(m.frames.map((f) => Buffer.from(f)));
        if (typeof req !== "string") void this.handle(req, this.out.control);
      }
    });
    worker.on("error", (e) => log(`control thread failed: ${e.stack ?? e}`));
    worker.unref();
    return worker;
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
      m.header.msg_type === "execute_request" && seq <= this.abortBefore
        ? this.abort(m)
        : this.handle(m, this.out.shell),
    );
  }

  /** A cell queued behind one that failed with stop_on_error: not run, as the spec asks. */
  private abort(req: Message): void {
    this.publish("status", { execution_state: "busy" }, req);
    this.reply(
      this.out.shell,
      req,
      "execute_reply",
      { status: "aborted", execution_count: this.executionCount },
      { status: "aborted" },
    );
    this.publish("status", { execution_state: "idle" }, req);
  }

  /** Sends an iopub message after any stream output buffered before it (output stays in order). */
  publish(type: string, content: unknown, parent: Message | null): void {
    this.streams.flush();
    this.send(type, content, parent);
  }

  private send(type: string, content: unknown, parent: Message | null): void {
    void this.out.iopub.send(this.wire.encode(type, content, parent));
  }

  private reply(
    outbox: Outbox,
    req: Message,
    type: string,
    content: unknown,
    metadata: Record<string, unknown> = {},
  ): void {
    void outbox.send(this.wire.encode(type, content, req, req.identities, metadata));
  }

  private sendDisplay(bundle: MimeBundle, displayId: string | undefined, update: boolean): void {
    const transient = displayId ? { display_id: displayId } : {};
    this.publish(
      update && displayId ? "update_display_data" : "display_data",
      { data: bundle, metadata: {}, transient },
      this.current,
    );
  }

  /**
   * Cell output (console.log, process.stdout.write) becomes stream messages of the running cell.
   * Output of work a cell left running (a timer, an un-awaited promise) is marked with the cell it
   * came from; when no cell runs it waits for the next one.
   */
  private captureOutput(): void {
    for (const name of ["stdout", "stderr"] as const) {
      const stream = process[name];
      stream.write = ((chunk: string | Uint8Array, enc?: unknown, cb?: unknown) => {
        const text =
          typeof chunk === "string"
            ? chunk
            : Buffer.from(chunk).toString(typeof enc === "string" ? (enc as BufferEncoding) : "utf8");
        this.write(name, text, cellContext.getStore()?.cell);
        const done = typeof enc === "function" ? enc : cb;
        if (typeof done === "function") (done as () => void)();
        return true;
      }) as typeof stream.write;
    }
  }

  private write(name: StreamName, text: string, origin: number | undefined): void {
    if (text.length === 0) return;
    if (this.running === 0) {
      this.held.push({
        name,
        text:
          origin === undefined
            ? text
            : `[output of cell ${origin}, which finished earlier, from work it left running]\n${text}`,
      });
      return;
    }
    if (origin !== undefined && origin !== this.running && origin !== this.lastOrigin) {
      this.streams.write(name, `[output of cell ${origin}, from work it left running]\n`);
    } else if (origin === this.running && this.lastOrigin !== undefined && this.lastOrigin !== this.running) {
      this.streams.write(name, `[cell ${this.running}]\n`);
    }
    this.lastOrigin = origin ?? this.lastOrigin;
    this.streams.write(name, text);
  }

  /**
   * An error no cell caught (a rejected promise nobody awaited, a throw in a timer): an `error`
   * output on the running cell, or stderr on the next cell when none runs. Never fatal.
   */
  reportUncaught(e: unknown, kind: string): void {
    const err = this.session.describe(e);
    const origin = /\(?cell (\d+)/.exec(err.traceback.join("\n"))?.[1];
    const from = origin === undefined ? "" : ` from cell ${origin}`;
    if (this.running !== 0) {
      this.publish(
        "error",
        { ...err, traceback: [`[${kind}${from}; the kernel and its variables are intact]`, ...err.traceback] },
        this.current,
      );
    } else {
      this.held.push({
        name: "stderr",
        text: `[${kind}${from}, after that cell finished]\n${err.traceback.join("\n")}\n`,
      });
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
        return this.reply(outbox, req, "complete_reply", {
          status: "ok",
          matches: r.candidates,
          cursor_start: r.start,
          cursor_end: r.end,
          metadata: {},
        });
      }
      case "inspect_request": {
        const code = String(c.code ?? "");
        const text = this.session.inspect(code, Number(c.cursor_pos ?? code.length));
        return this.reply(outbox, req, "inspect_reply", {
          status: "ok",
          found: text !== null,
          data: text === null ? {} : { "text/plain": text },
          metadata: {},
        });
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
        this.interrupt();
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
    this.running = count > 0 ? count : -1;
    Atomics.store(this.flags, 1, this.running);
    clearInterrupt();
    this.lastOrigin = this.running;
    const held = this.held;
    this.held = [];
    for (const h of held) this.streams.write(h.name, h.text);
    const t0 = performance.now();
    let outcome = await this.session.execute(code, count);
    this.warnUnawaited(t0);
    if (!outcome.ok) {
      const open = repairEngine();
      if (open > 0) log(`closed ${open} tensor scope(s) the failed cell left open`);
    }
    let bundle: MimeBundle | null = null;
    if (outcome.ok && outcome.hasValue) {
      try {
        bundle = await toMimeBundle(outcome.value);
      } catch (e) {
        outcome = { ok: false, ...this.session.describe(e) };
      }
    }
    this.running = 0;
    Atomics.store(this.flags, 1, 0);
    this.collectReplaced();
    this.streams.endCell();
    if (outcome.ok) {
      if (bundle !== null && !silent) {
        this.publish("execute_result", { execution_count: count, data: bundle, metadata: {} }, req);
        if (entry) entry.output = typeof bundle["text/plain"] === "string" ? bundle["text/plain"] : null;
      }
      this.reply(
        outbox,
        req,
        "execute_reply",
        { status: "ok", execution_count: count, payload: [], user_expressions: {} },
        { status: "ok" },
      );
    } else {
      const { ename, evalue, traceback } = outcome;
      if (!silent) this.publish("error", { ename, evalue, traceback }, req);
      // cells already queued behind this one are aborted (stop_on_error defaults to true)
      if (c.stop_on_error !== false) this.abortBefore = this.received;
      this.reply(
        outbox,
        req,
        "execute_reply",
        { status: "error", execution_count: count, ename, evalue, traceback },
        { status: "error" },
      );
    }
  }

  /**
   * After a cell replaced objects held by top-level names (a re-run `prepare` cell), a garbage
   * collection lets the old models' tensors go (src/nn/ownership.ts); the kernel runs with --expose-gc.
   */
  private collectReplaced(): void {
    const ex = this.session.executor;
    if (!ex.replacedObjects) return;
    ex.replacedObjects = false;
    (globalThis as { gc?: () => void }).gc?.();
  }

  /** A quantbook operation this cell started and left running is almost always a missing `await`. */
  private warnUnawaited(cellStart: number): void {
    for (const op of runningOperations()) {
      if (op.since < cellStart) continue;
      this.streams.write(
        "stderr",
        `Warning: ${op.task}(...) started in this cell is still running — the cell ended without waiting for it. ` +
          `Write \`await ${op.task}(...)\`; until it finishes, the model it works on refuses other calls.\n`,
      );
    }
  }

  /** Interrupt (SIGINT, or interrupt_request through the control thread): stops quantbook's long operations and the cell's wait. */
  interrupt(): void {
    requestInterrupt();
    // a quantbook operation stops by itself at its next step, with its own InterruptedError
    if (runningOperations().length === 0) this.session.interrupt();
    else setTimeout(() => this.session.interrupt(), INTERRUPT_GRACE_MS).unref();
  }

  shutdown(): void {
    if (this.closing) return;
    this.closing = true;
    setTimeout(async () => {
      this.session.close();
      this.streams.flush();
      // the control thread closes its socket first: zmq aborts the process if a thread's socket is open at exit
      const worker = this.control;
      if (worker) {
        const exited = new Promise((r) => worker.once("exit", r));
        worker.postMessage({ close: true });
        await Promise.race([exited, new Promise((r) => setTimeout(r, 1000))]);
        await worker.terminate();
      }
      for (const s of [this.shell, this.stdin, this.iopub, this.hb]) s.close();
      process.exit(0);
    }, 50);
  }
}
