/**
 * A restricted unpickler for what `torch.save` writes: containers, numbers, strings, and
 * tensors through a small allow-list of torch rebuild functions. It never imports or calls
 * anything else: a GLOBAL outside the allow-list is refused with an error, so a malicious
 * checkpoint cannot run code.
 */

import { CorruptDataError } from "../messages";

/** A Python callable the reader knows; `call` builds the value. */
export interface KnownGlobal {
  readonly qualifiedName: string;
  call(args: unknown[]): unknown;
}

/** A storage reference from a persistent id: ('storage', type, key, location, numel). */
export interface StorageRef {
  kind: "storage";
  storageType: string;
  key: string;
  location: string;
  numel: number;
}

/** A pickle quantbook will not (or cannot) read; loadTorch names the file. */
export class PickleError extends CorruptDataError {
  constructor(message: string) {
    super(message);
    this.name = "PickleError";
  }
}

const MARK = Symbol("mark");

export interface UnpickleOptions {
  /** Resolves allowed globals by "module.name"; return undefined to refuse. */
  findGlobal(module: string, name: string): KnownGlobal | undefined;
  persistentLoad(pid: unknown): unknown;
}

export function isPlainDict(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v) && Object.getPrototypeOf(v) === Object.prototype;
}

/** Reads one pickle (protocols 2 to 5) under the restrictions above. */
export function unpickle(buf: Buffer, opts: UnpickleOptions): unknown {
  return unpickleAt(buf, 0, opts).value;
}

/** Reads the pickle that starts at byte `start`; `end` is the byte after its STOP (the next pickle of a stream starts there). */
export function unpickleAt(buf: Buffer, start: number, opts: UnpickleOptions): { value: unknown; end: number } {
  const stack: unknown[] = [];
  const memo = new Map<number, unknown>();
  let p = start;
  const need = (n: number) => {
    if (p + n > buf.length) throw new PickleError(`unexpected end of pickle at byte ${p} (the file is truncated)`);
  };
  const u8 = () => (need(1), buf[p++]);
  const u16 = () => (need(2), (p += 2), buf.readUInt16LE(p - 2));
  const u32 = () => (need(4), (p += 4), buf.readUInt32LE(p - 4));
  const i32 = () => (need(4), (p += 4), buf.readInt32LE(p - 4));
  const str = (n: number) => (need(n), (p += n), buf.toString("utf8", p - n, p));
  const line = () => {
    const end = buf.indexOf(0x0a, p);
    if (end < 0) throw new PickleError("unexpected end of pickle inside a text field (the file is truncated)");
    const s = buf.toString("latin1", p, end);
    p = end + 1;
    return s;
  };
  const popMark = (): unknown[] => {
    const i = stack.lastIndexOf(MARK);
    if (i < 0) throw new PickleError("pickle stack has no MARK where one is needed");
    const items = stack.splice(i);
    items.shift();
    return items;
  };
  const pop = () => {
    if (stack.length === 0) throw new PickleError("pickle stack underflow");
    return stack.pop();
  };
  const top = () => stack[stack.length - 1];
  const setItems = (target: unknown, items: unknown[]) => {
    if (!isPlainDict(target)) throw new PickleError("SETITEM(S) on something that is not a dict");
    for (let i = 0; i + 1 < items.length; i += 2) target[String(items[i])] = items[i + 1];
  };
  const long = (n: number) => {
    need(n);
    let v = 0n;
    for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(buf[p + i]);
    if (n > 0 && buf[p + n - 1] & 0x80) v -= 1n << BigInt(8 * n);
    p += n;
    return Number(v);
  };
  const global = (module: string, name: string) => {
    const g = opts.findGlobal(module, name);
    if (g === undefined) {
      throw new PickleError(
        `the pickle refers to '${module}.${name}', which is not a torch tensor or container type; refusing to load it (this reader never runs code from a file). ` +
          "If the file is yours, save a plain state dict (torch.save(model.state_dict(), path)) or safetensors instead.",
      );
    }
    return g;
  };

  for (;;) {
    const op = u8();
    switch (op) {
      case 0x80:
        u8();
        break; // PROTO
      case 0x95:
        need(8);
        p += 8;
        break; // FRAME
      case 0x2e:
        return { value: pop(), end: p }; // STOP
      case 0x28:
        stack.push(MARK);
        break; // MARK
      case 0x7d:
        stack.push({});
        break; // EMPTY_DICT
      case 0x5d:
        stack.push([]);
        break; // EMPTY_LIST
      case 0x29:
        stack.push([]);
        break; // EMPTY_TUPLE
      case 0x74:
        stack.push(popMark());
        break; // TUPLE
      case 0x85:
        stack.push(Array.of<unknown>(pop()));
        break; // TUPLE1
      case 0x86: {
        const b = pop();
        const a = pop();
        stack.push(Array.of<unknown>(a, b));
        break;
      } // TUPLE2
      case 0x87: {
        const c = pop();
        const b = pop();
        const a = pop();
        stack.push(Array.of<unknown>(a, b, c));
        break;
      } // TUPLE3
      case 0x6c:
        stack.push(popMark());
        break; // LIST
      case 0x64: {
        const d: Record<string, unknown> = {};
        setItems(d, popMark());
        stack.push(d);
        break;
      } // DICT
      case 0x4e:
        stack.push(null);
        break; // NONE
      case 0x88:
        stack.push(true);
        break; // NEWTRUE
      case 0x89:
        stack.push(false);
        break; // NEWFALSE
      case 0x4a:
        stack.push(i32());
        break; // BININT
      case 0x4b:
        stack.push(u8());
        break; // BININT1
      case 0x4d:
        stack.push(u16());
        break; // BININT2
      case 0x8a:
        stack.push(long(u8()));
        break; // LONG1
      case 0x8b:
        stack.push(long(u32()));
        break; // LONG4
      case 0x47:
        need(8);
        stack.push(buf.readDoubleBE(p));
        p += 8;
        break; // BINFLOAT
      case 0x58:
        stack.push(str(u32()));
        break; // BINUNICODE
      case 0x8c:
        stack.push(str(u8()));
        break; // SHORT_BINUNICODE
      case 0x8d: {
        need(8);
        const n = Number(buf.readBigUInt64LE(p));
        p += 8;
        stack.push(str(n));
        break;
      } // BINUNICODE8
      case 0x42: {
        const n = u32();
        need(n);
        stack.push(Buffer.from(buf.subarray(p, p + n)));
        p += n;
        break;
      } // BINBYTES
      case 0x43: {
        const n = u8();
        need(n);
        stack.push(Buffer.from(buf.subarray(p, p + n)));
        p += n;
        break;
      } // SHORT_BINBYTES
      case 0x71:
        memo.set(u8(), top());
        break; // BINPUT
      case 0x72:
        memo.set(u32(), top());
        break; // LONG_BINPUT
      case 0x94:
        memo.set(memo.size, top());
        break; // MEMOIZE
      case 0x68:
      case 0x6a: {
        // BINGET, LONG_BINGET
        const k = op === 0x68 ? u8() : u32();
        if (!memo.has(k)) throw new PickleError(`pickle memo has no entry ${k}`);
        stack.push(memo.get(k));
        break;
      }
      case 0x73: {
        const v = pop();
        const k = pop();
        setItems(top(), [k, v]);
        break;
      } // SETITEM
      case 0x75: {
        const items = popMark();
        setItems(top(), items);
        break;
      } // SETITEMS
      case 0x61: {
        const v = pop();
        const l = top();
        if (!Array.isArray(l)) throw new PickleError("APPEND to something that is not a list");
        l.push(v);
        break;
      }
      case 0x65: {
        const items = popMark();
        const l = top();
        if (!Array.isArray(l)) throw new PickleError("APPENDS to something that is not a list");
        l.push(...items);
        break;
      }
      case 0x63: {
        const module = line();
        const name = line();
        stack.push(global(module, name));
        break;
      } // GLOBAL
      case 0x93: {
        const name = pop();
        const module = pop();
        stack.push(global(String(module), String(name)));
        break;
      } // STACK_GLOBAL
      case 0x51:
        stack.push(opts.persistentLoad(pop()));
        break; // BINPERSID
      case 0x52: {
        // REDUCE
        const args = pop();
        const fn = pop() as KnownGlobal;
        if (!Array.isArray(args) || fn === null || typeof fn !== "object" || typeof fn.call !== "function") {
          throw new PickleError("REDUCE on something that is not an allowed callable");
        }
        stack.push(fn.call(args));
        break;
      }
      case 0x62: {
        // BUILD: state for an object; only dict attributes (OrderedDict._metadata) are accepted and kept aside
        const state = pop();
        const obj = top();
        if (obj !== null && typeof obj === "object" && (state === null || isPlainDict(state))) {
          Object.defineProperty(obj, "__state__", { value: state, enumerable: false, configurable: true });
          break;
        }
        throw new PickleError("BUILD with a state this reader does not accept");
      }
      default:
        throw new PickleError(
          `pickle opcode 0x${op.toString(16)} at byte ${p - 1} is not one torch.save writes for tensors and containers; refusing it`,
        );
    }
  }
}
