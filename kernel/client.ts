/**
 * A small Jupyter client in Node: starts a kernel process with a fresh connection file, speaks
 * the wire protocol over zmq, runs code and collects nbformat outputs. Used by the headless
 * walkthrough (no Python needed).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import * as path from "node:path";
import * as zmq from "zeromq";
import { Wire, type Message } from "./wire";
import { errors } from "../src/messages";

export type NbOutput =
  | { output_type: "stream"; name: string; text: string }
  | { output_type: "display_data"; data: Record<string, unknown>; metadata: Record<string, unknown> }
  | {
      output_type: "execute_result";
      execution_count: number;
      data: Record<string, unknown>;
      metadata: Record<string, unknown>;
    }
  | { output_type: "error"; ename: string; evalue: string; traceback: string[] };

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
    srv.on("error", reject);
  });
}

export interface ExecuteResult {
  status: "ok" | "error" | "aborted";
  executionCount: number;
  outputs: NbOutput[];
  /** When the kernel went busy, took the input, replied and went idle (ISO times, nbclient's `metadata.execution` keys). */
  timing: Record<string, string>;
}

export class KernelClient {
  private readonly shell = new zmq.Dealer();
  private readonly control = new zmq.Dealer();
  private readonly iopub = new zmq.Subscriber();
  private readonly waiting = new Map<string, (m: Message) => void>();
  private readonly listeners = new Map<string, (m: Message) => void>();
  private seen = false;

  private constructor(
    private readonly proc: ChildProcess,
    private readonly wire: Wire,
    private readonly dir: string,
  ) {}

  /** Starts `argv` (the kernelspec's, with {connection_file}) in `cwd` and waits until it answers. */
  static async start(argv: string[], cwd: string, timeoutMs = 30000): Promise<KernelClient> {
    const dir = mkdtempSync(path.join(tmpdir(), "qb-kernel-"));
    const key = randomBytes(16).toString("hex");
    const ports = await Promise.all([0, 1, 2, 3, 4].map(() => freePort()));
    const conn = {
      transport: "tcp",
      ip: "127.0.0.1",
      shell_port: ports[0],
      iopub_port: ports[1],
      stdin_port: ports[2],
      control_port: ports[3],
      hb_port: ports[4],
      key,
      signature_scheme: "hmac-sha256",
    };
    const file = path.join(dir, "connection.json");
    writeFileSync(file, JSON.stringify(conn));
    const [cmd, ...args] = argv.map((a) => a.replace("{connection_file}", file));
    const proc = spawn(cmd, args, { cwd, stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    proc.stderr?.on("data", (d) => (stderr += d.toString()));
    const client = new KernelClient(proc, new Wire(key), dir);
    client.shell.connect(`tcp://127.0.0.1:${conn.shell_port}`);
    client.control.connect(`tcp://127.0.0.1:${conn.control_port}`);
    client.iopub.connect(`tcp://127.0.0.1:${conn.iopub_port}`);
    client.iopub.subscribe();
    void client.readReplies(client.shell);
    void client.readReplies(client.control);
    void client.readIopub();
    const deadline = Date.now() + timeoutMs;
    // like jupyter_client's wait_for_ready: ask for kernel_info until iopub is flowing too
    while (!client.seen) {
      if (proc.exitCode !== null)
        throw errors.kernel(`it exited with code ${proc.exitCode}`, `its output: ${stderr.trim() || "(none)"}`);
      if (Date.now() > deadline)
        throw errors.kernel(`no answer within ${timeoutMs} ms`, `its output: ${stderr.trim() || "(none)"}`);
      await Promise.race([client.request("kernel_info_request", {}), new Promise((r) => setTimeout(r, 500))]);
    }
    return client;
  }

  private async readReplies(socket: zmq.Dealer): Promise<void> {
    for await (const frames of socket) {
      const m = this.wire.decode(frames as Buffer[]);
      if (typeof m === "string") continue;
      const id = m.parent_header.msg_id as string;
      this.waiting.get(id)?.(m);
      this.waiting.delete(id);
    }
  }

  private async readIopub(): Promise<void> {
    for await (const frames of this.iopub) {
      const m = this.wire.decode(frames as Buffer[]);
      if (typeof m === "string") continue;
      this.seen = true;
      this.listeners.get(m.parent_header.msg_id as string)?.(m);
    }
  }

  /** Sends a shell (or control) request and resolves with its reply. */
  request(
    type: string,
    content: Record<string, unknown>,
    onIopub?: (m: Message) => void,
    channel: "shell" | "control" = "shell",
  ): Promise<Message> {
    const frames = this.wire.encode(type, content, null);
    const id = JSON.parse(frames[2].toString()).msg_id as string;
    if (onIopub) this.listeners.set(id, onIopub);
    return new Promise((resolve) => {
      this.waiting.set(id, resolve);
      void (channel === "shell" ? this.shell : this.control).send(frames);
    });
  }

  /** interrupt_request on the control channel (what a frontend sends for interrupt_mode "message"). */
  interruptByMessage(): Promise<Message> {
    return this.request("interrupt_request", {}, undefined, "control");
  }

  /** SIGINT to the kernel process (interrupt_mode "signal", the kernelspec's default). */
  interruptBySignal(): void {
    this.proc.kill("SIGINT");
  }

  /** Runs code; resolves when the kernel is idle again, with the cell's nbformat outputs. */
  execute(code: string, timeoutMs = 300000): Promise<ExecuteResult> {
    const outputs: NbOutput[] = [];
    const byDisplayId = new Map<string, number[]>();
    let clearPending = false;
    let reply: Message | null = null;
    const timing: Record<string, string> = {};
    const stamp = (key: string, m: Message) =>
      (timing[key] =
        typeof m.header.date === "string" && m.header.date !== "" ? m.header.date : new Date().toISOString());
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () =>
          reject(errors.kernel(`the cell did not finish within ${timeoutMs} ms`, "raise the timeout or interrupt it")),
        timeoutMs,
      );
      const add = (o: NbOutput, displayId?: string) => {
        if (clearPending) {
          outputs.length = 0;
          byDisplayId.clear();
          clearPending = false;
        }
        const last = outputs[outputs.length - 1];
        if (o.output_type === "stream" && last?.output_type === "stream" && last.name === o.name) last.text += o.text;
        else outputs.push(o);
        if (displayId) byDisplayId.set(displayId, [...(byDisplayId.get(displayId) ?? []), outputs.length - 1]);
      };
      let idleMsg = false;
      const finish = () => {
        if (!idleMsg || reply === null) return;
        clearTimeout(timer);
        this.listeners.delete(reply.parent_header.msg_id as string);
        const c = reply.content as { status: ExecuteResult["status"]; execution_count: number };
        stamp("shell.execute_reply", reply);
        resolve({ status: c.status, executionCount: c.execution_count, outputs, timing });
      };
      void this.request(
        "execute_request",
        { code, silent: false, store_history: true, user_expressions: {}, allow_stdin: false, stop_on_error: true },
        (m) => {
          const c = m.content as Record<string, unknown>;
          const transient = c.transient as { display_id?: string } | undefined;
          switch (m.header.msg_type) {
            case "stream":
              return add({ output_type: "stream", name: c.name as string, text: c.text as string });
            case "display_data":
              return add(
                {
                  output_type: "display_data",
                  data: c.data as Record<string, unknown>,
                  metadata: (c.metadata as Record<string, unknown>) ?? {},
                },
                transient?.display_id,
              );
            case "update_display_data":
              for (const i of byDisplayId.get(transient?.display_id ?? "") ?? [])
                (outputs[i] as { data: unknown }).data = c.data;
              return;
            case "execute_result":
              return add({
                output_type: "execute_result",
                execution_count: c.execution_count as number,
                data: c.data as Record<string, unknown>,
                metadata: {},
              });
            case "error":
              return add({
                output_type: "error",
                ename: c.ename as string,
                evalue: c.evalue as string,
                traceback: c.traceback as string[],
              });
            case "clear_output":
              if (c.wait) clearPending = true;
              else {
                outputs.length = 0;
                byDisplayId.clear();
              }
              return;
            case "execute_input":
              stamp("iopub.execute_input", m);
              return;
            case "status":
              if (c.execution_state === "busy") stamp("iopub.status.busy", m);
              if (c.execution_state === "idle") {
                stamp("iopub.status.idle", m);
                idleMsg = true;
                finish();
              }
          }
        },
      ).then((r) => {
        reply = r;
        finish();
      });
    });
  }

  async shutdown(): Promise<void> {
    await Promise.race([this.request("shutdown_request", { restart: false }), new Promise((r) => setTimeout(r, 2000))]);
    await new Promise((r) => setTimeout(r, 100));
    if (this.proc.exitCode === null) this.proc.kill("SIGKILL");
    this.shell.close();
    this.control.close();
    this.iopub.close();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
