/**
 * The control channel on its own thread, so `interrupt_request` is answered even while a cell
 * keeps the main thread busy in synchronous code. An interrupt sets the shared flag word (which
 * quantbook's long operations check between batches and ops, stopping cleanly); if the cell is
 * still running after a grace period, the worker sends SIGINT to the process, which breaks a
 * synchronous loop. Every other control request is passed to the main thread, which sends its
 * replies back through this worker (the socket belongs to this thread).
 *
 * Shared words: [0] interrupt requested, [1] the running cell's number (0: idle).
 */
import { parentPort, workerData } from "node:worker_threads";
import * as zmq from "zeromq";
import { Wire } from "./wire";

export interface ControlWorkerData {
  address: string;
  key: string;
  scheme: string;
  shared: SharedArrayBuffer;
  graceMs: number;
}

/** Messages from the worker to the main thread. */
export type ToMain = { frames: Uint8Array[] } | { interrupted: true } | { log: string };
/** Messages from the main thread to the worker. */
export type ToWorker = { send: Uint8Array[] } | { close: true };

async function run(data: ControlWorkerData): Promise<void> {
  const port = parentPort;
  if (port === null) return;
  const flag = new Int32Array(data.shared);
  const wire = new Wire(data.key, data.scheme);
  const sock = new zmq.Router();
  await sock.bind(data.address);
  let chain: Promise<void> = Promise.resolve();
  const send = (frames: Buffer[]) => {
    chain = chain
      .then(() => sock.send(frames))
      .catch((e) => port.postMessage({ log: `control send failed: ${e}` } satisfies ToMain));
  };
  port.on("message", (m: ToWorker) => {
    if ("send" in m) send(m.send.map((f) => Buffer.from(f)));
    else if ("close" in m) {
      sock.close();
      port.close();
    }
  });
  for await (const raw of sock) {
    const frames = raw as Buffer[];
    const m = wire.decode(frames);
    if (typeof m === "string") {
      port.postMessage({ log: `dropped a control message: ${m}` } satisfies ToMain);
      continue;
    }
    if (m.header.msg_type !== "interrupt_request") {
      port.postMessage({ frames } satisfies ToMain);
      continue;
    }
    const running = Atomics.load(flag, 1);
    Atomics.store(flag, 0, 1);
    send(wire.encode("interrupt_reply", { status: "ok" }, m, m.identities));
    port.postMessage({ interrupted: true } satisfies ToMain);
    if (running !== 0) {
      setTimeout(() => {
        if (Atomics.load(flag, 1) === running) process.kill(process.pid, "SIGINT");
      }, data.graceMs);
    }
  }
}

void run(workerData as ControlWorkerData);
