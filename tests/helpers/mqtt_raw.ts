/** Raw MQTT over TCP for tests that send malformed packets: bytes in, framed packets out. */

const encoder = new TextEncoder();

/** A packet as received: its type (the high nibble of the first byte) and its body. */
export interface RawPacket {
  readonly type: number;
  readonly flags: number;
  readonly body: Uint8Array;
}

/** Packet types by number, for readable expectations. */
export const CONNACK = 2, PUBACK = 4, PUBREC = 5, SUBACK = 9, PINGRESP = 13;

/** The remaining-length varint of MQTT. */
export function varint(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return out;
}

/** A length-prefixed MQTT string (given as text, or as raw bytes to send invalid UTF-8). */
export function str(s: string | readonly number[]): number[] {
  const bytes = typeof s === "string" ? [...encoder.encode(s)] : [...s];
  return [bytes.length >> 8, bytes.length & 0xff, ...bytes];
}

/** A whole packet: first byte, remaining length, body. */
export function packet(first: number, body: readonly number[]): number[] {
  return [first, ...varint(body.length), ...body];
}

export interface ConnectFields {
  readonly protocol?: string | readonly number[];
  readonly level?: number;
  /** Connect flags; by default derived from what is given (username, password, clean session). */
  readonly flags?: number;
  readonly keepalive?: number;
  readonly clientId?: string | readonly number[];
  readonly username?: string | readonly number[];
  readonly password?: string | readonly number[];
}

/** A CONNECT packet (MQTT 3.1.1 unless told otherwise). */
export function connectPacket(f: ConnectFields): number[] {
  const flags = f.flags ??
    (0x02 | (f.username !== undefined ? 0x80 : 0) | (f.password !== undefined ? 0x40 : 0));
  const keepalive = f.keepalive ?? 60;
  return packet(0x10, [
    ...str(f.protocol ?? "MQTT"),
    f.level ?? 4,
    flags,
    keepalive >> 8,
    keepalive & 0xff,
    ...str(f.clientId ?? `raw-${crypto.randomUUID().slice(0, 8)}`),
    ...(f.username !== undefined ? str(f.username) : []),
    ...(f.password !== undefined ? str(f.password) : []),
  ]);
}

/** A PUBLISH packet; QoS 1 by default with packet id 1. */
export function publishPacket(
  topic: string | readonly number[],
  payload: string | readonly number[],
  options: { qos?: number; id?: number; flags?: number } = {},
): number[] {
  const qos = options.qos ?? 1;
  const id = options.id ?? 1;
  const bytes = typeof payload === "string" ? [...encoder.encode(payload)] : [...payload];
  return packet(0x30 | (options.flags ?? qos << 1), [
    ...str(topic),
    ...(qos > 0 ? [id >> 8, id & 0xff] : []),
    ...bytes,
  ]);
}

/** PINGREQ: the answer (PINGRESP) proves the connection is still served. */
export const PINGREQ = [0xc0, 0x00];

/** One raw TCP connection to an MQTT broker. */
export class RawMqtt {
  readonly packets: RawPacket[] = [];
  readonly closed: Promise<void>;
  #buf: number[] = [];
  #isClosed = false;
  #waiters = new Set<() => void>();

  private constructor(private readonly conn: Deno.Conn) {
    this.closed = this.#read();
  }

  static async open(port: number): Promise<RawMqtt> {
    return new RawMqtt(await Deno.connect({ hostname: "127.0.0.1", port }));
  }

  /** True once the broker closed the connection (or it failed). */
  get isClosed(): boolean {
    return this.#isClosed;
  }

  /** Sends bytes; false when the connection is already gone. */
  async send(bytes: readonly number[] | Uint8Array): Promise<boolean> {
    try {
      const data = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
      for (let at = 0; at < data.length;) at += await this.conn.write(data.subarray(at));
      return true;
    } catch {
      return false;
    }
  }

  /** Waits until a packet of `type` came (returns it), or null once the connection closed or time ran out. */
  async expect(type: number, timeoutMs = 10_000): Promise<RawPacket | null> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const p = this.packets.find((p) => p.type === type);
      if (p) return p;
      if (this.#isClosed || Date.now() > deadline) return null;
      await this.#change(deadline - Date.now());
    }
  }

  /** Waits until the broker closes the connection; false if it is still open after `timeoutMs`. */
  async closedWithin(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!this.#isClosed && Date.now() < deadline) await this.#change(deadline - Date.now());
    return this.#isClosed;
  }

  close(): void {
    try {
      this.conn.close();
    } catch { /* already closed */ }
  }

  #change(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, Math.max(1, ms));
      this.#waiters.add(done);
    });
  }

  #wake(): void {
    for (const w of [...this.#waiters]) w();
  }

  async #read(): Promise<void> {
    const chunk = new Uint8Array(4096);
    try {
      for (;;) {
        const n = await this.conn.read(chunk);
        if (n === null) break;
        this.#buf.push(...chunk.subarray(0, n));
        this.#frame();
        this.#wake();
      }
    } catch { /* reset by the broker */ }
    this.#isClosed = true;
    this.close();
    this.#wake();
  }

  #frame(): void {
    for (;;) {
      let len = 0, mul = 1, i = 1;
      for (;; i++) {
        if (i >= this.#buf.length) return;
        const b = this.#buf[i]!;
        len += (b & 0x7f) * mul;
        mul *= 128;
        if (!(b & 0x80)) break;
      }
      if (this.#buf.length < i + 1 + len) return;
      const first = this.#buf[0]!;
      this.packets.push({
        type: first >> 4,
        flags: first & 0x0f,
        body: new Uint8Array(this.#buf.slice(i + 1, i + 1 + len)),
      });
      this.#buf = this.#buf.slice(i + 1 + len);
    }
  }
}
