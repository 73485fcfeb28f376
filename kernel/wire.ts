/**
 * The Jupyter wire protocol (messaging spec 5.3): multipart frames
 * [identities..., "<IDS|MSG>", hmac, header, parent_header, metadata, content, buffers...],
 * signed with HMAC-SHA256 over the four JSON frames.
 */
import { createHmac, randomUUID, timingSafeEqual } from "node:crypto";
import { errors } from "../src/messages";

export const PROTOCOL_VERSION = "5.3";
const DELIM = Buffer.from("<IDS|MSG>");

export interface Header {
  msg_id: string;
  username: string;
  session: string;
  date: string;
  msg_type: string;
  version: string;
}

export interface Message<C = Record<string, unknown>> {
  identities: Buffer[];
  header: Header;
  parent_header: Partial<Header>;
  metadata: Record<string, unknown>;
  content: C;
  buffers: Buffer[];
}

/** How many recent message ids are remembered to refuse a replayed message. */
const REPLAY_WINDOW = 4096;

export class Wire {
  readonly session = randomUUID();
  private readonly seen = new Set<string>();

  constructor(
    private readonly key: string,
    scheme = "hmac-sha256",
  ) {
    if (key !== "" && scheme !== "hmac-sha256")
      throw errors.kernel(
        `unsupported signature scheme ${scheme}`,
        "quantbook signs with hmac-sha256: set signature_scheme to hmac-sha256 in the connection file",
      );
  }

  private sign(parts: Buffer[]): string {
    if (this.key === "") return "";
    const h = createHmac("sha256", this.key);
    for (const p of parts) h.update(p);
    return h.digest("hex");
  }

  /** Parses and verifies a multipart message; returns null (and says why) for a bad one. */
  decode(frames: Buffer[]): Message | string {
    const at = frames.findIndex((f) => f.equals(DELIM));
    if (at < 0 || frames.length < at + 6) return "message without delimiter or parts";
    const [sig, ...json] = frames.slice(at + 1, at + 6);
    const expected = Buffer.from(this.sign(json));
    const got = Buffer.from(sig.toString());
    if (this.key !== "" && (got.length !== expected.length || !timingSafeEqual(got, expected))) return "bad signature";
    let parsed: Message;
    try {
      const [header, parent, metadata, content] = json.map((b) => JSON.parse(b.toString() || "{}"));
      parsed = {
        identities: frames.slice(0, at),
        header,
        parent_header: parent,
        metadata,
        content,
        buffers: frames.slice(at + 6),
      };
    } catch {
      return "unparsable JSON in a message";
    }
    // a signed message seen before is a replay (the spec's HMAC protects content, not freshness)
    const id = parsed.header?.msg_id;
    if (this.key !== "" && typeof id === "string") {
      if (this.seen.has(id)) return `replayed message ${id}`;
      this.seen.add(id);
      if (this.seen.size > REPLAY_WINDOW) this.seen.delete(this.seen.values().next().value as string);
    }
    return parsed;
  }

  /** A reply or broadcast for `parent`, encoded as frames. */
  encode(
    msgType: string,
    content: unknown,
    parent: Message | null,
    identities: Buffer[] = [],
    metadata: Record<string, unknown> = {},
  ): Buffer[] {
    const header: Header = {
      msg_id: randomUUID(),
      username: parent?.header.username ?? "quantbook",
      session: this.session,
      date: new Date().toISOString(),
      msg_type: msgType,
      version: PROTOCOL_VERSION,
    };
    const json = [header, parent?.header ?? {}, metadata, content].map((o) => Buffer.from(JSON.stringify(o)));
    return [...identities, DELIM, Buffer.from(this.sign(json)), ...json];
  }
}
