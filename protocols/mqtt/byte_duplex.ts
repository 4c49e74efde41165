import { Buffer } from "node:buffer";
import { Duplex } from "node:stream";
import { PacketSizeGuard } from "./packet_guard.ts";

/** Where a `ByteDuplex` writes what the broker sends, and how the connection is closed. */
export interface ByteSink {
  /** Resolves once the bytes are handed to the connection (backpressure for the broker). */
  write(bytes: Uint8Array): Promise<void>;
  close(): void;
  /**
   * Resolves once the connection is gone for good, which may be well after `close()`: a WebSocket waits for its
   * client to answer the close frame (Deno cannot drop an upgraded socket). None: gone at `close()`.
   */
  readonly gone?: Promise<void>;
}

/**
 * What a write to a closed `ByteDuplex` is answered with: one error for all. Deno's node:stream builds a new NodeError
 * for each (about 60 µs: it captures and formats a stack), and mqtt-packet writes a PUBLISH as 5 or 6 writes, so every
 * message aedes still delivered to a connection that had just gone (until its unsubscribe, a few turns later) cost
 * about 0.4 ms of the event loop: churning TCP clients kept it busy for hundreds of ms at a time.
 */
const WRITE_AFTER_CLOSE = new Error("write after the connection closed");

/**
 * The node stream aedes talks to, fed from a Deno connection or a WebSocket. Received bytes pass
 * a packet size guard first. `read()` without a size returns everything buffered: Deno's
 * node:stream returns only the first chunk there, and aedes, which reads once per `readable`
 * event, would then stall with bytes it never sees (e.g. packets that came in while it was
 * authenticating a CONNECT).
 */
export class ByteDuplex extends Duplex {
  readonly #sink: ByteSink;
  readonly #guard: PacketSizeGuard;
  #wantMore: (() => void) | null = null;

  /**
   * @param remoteAddress the client's IP address, for the brute-force slow-down ("unknown" when
   * the transport does not tell)
   */
  constructor(sink: ByteSink, maxPacketBytes: number, readonly remoteAddress = "unknown") {
    super({ allowHalfOpen: false });
    this.#sink = sink;
    this.#guard = new PacketSizeGuard(maxPacketBytes);
  }

  /** Resolves once the connection is gone for good (its socket released), closed as a stream or not. */
  get gone(): Promise<void> {
    const closed = this.closed
      ? Promise.resolve()
      : new Promise<void>((resolve) => this.once("close", () => resolve()));
    return this.#sink.gone ? Promise.all([closed, this.#sink.gone]).then(() => {}) : closed;
  }

  /** Hands received bytes to the broker; false when the reader should wait for `wanted()`. */
  receive(bytes: Uint8Array): boolean {
    if (this.destroyed) return false;
    try {
      this.#guard.check(bytes);
    } catch (err) {
      this.destroy(err as Error);
      return false;
    }
    return this.push(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  }

  /** The connection ended on the other side. */
  receiveEnd(): void {
    if (!this.destroyed) this.push(null);
  }

  /** Resolves when the broker wants more bytes (or the stream is gone). */
  wanted(): Promise<void> {
    if (this.destroyed) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        this.off("close", done);
        this.#wantMore = null;
        resolve();
      };
      this.#wantMore = done;
      this.once("close", done);
    });
  }

  // deno-lint-ignore no-explicit-any
  override write(chunk: any, encoding?: any, callback?: any): boolean {
    if (this.destroyed || this.writableEnded) {
      const cb = typeof encoding === "function" ? encoding : callback;
      if (typeof cb === "function") queueMicrotask(() => cb(WRITE_AFTER_CLOSE));
      return false;
    }
    return super.write(chunk, encoding, callback);
  }

  override read(size?: number): Buffer | null {
    if (size === undefined || size === null) {
      const n = this.readableLength;
      return super.read(n > 0 ? n : undefined);
    }
    return super.read(size);
  }

  override _read(): void {
    this.#wantMore?.();
  }

  override _write(chunk: Buffer, _encoding: string, callback: (err?: Error | null) => void): void {
    this.#sink.write(chunk).then(() => callback(), (err) => callback(err));
  }

  override _writev(chunks: { chunk: Buffer }[], callback: (err?: Error | null) => void): void {
    const bytes = chunks.length === 1 ? chunks[0]!.chunk : Buffer.concat(chunks.map((c) => c.chunk));
    this.#sink.write(bytes).then(() => callback(), (err) => callback(err));
  }

  override _final(callback: (err?: Error | null) => void): void {
    this.#sink.close();
    callback();
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    this.#sink.close();
    this.#wantMore?.();
    callback(err);
  }
}

/** A `ByteDuplex` over a TCP or TLS connection. */
export function duplexOfConn(conn: Deno.Conn, maxPacketBytes: number): ByteDuplex {
  let closed = false;
  const duplex = new ByteDuplex(
    {
      write: async (bytes) => {
        for (let at = 0; at < bytes.length;) at += await conn.write(bytes.subarray(at));
      },
      close: () => {
        if (closed) return;
        closed = true;
        try {
          conn.close();
        } catch {
          // already closed
        }
      },
    },
    maxPacketBytes,
    (conn.remoteAddr as Deno.NetAddr).hostname,
  );
  (async () => {
    const buf = new Uint8Array(64 * 1024);
    try {
      for (;;) {
        const n = await conn.read(buf);
        if (n === null) break;
        if (!duplex.receive(buf.slice(0, n))) await duplex.wanted();
        if (duplex.destroyed) return;
      }
      duplex.receiveEnd();
    } catch (err) {
      if (!duplex.destroyed) duplex.destroy(err as Error);
    }
  })();
  return duplex;
}

const WS_HIGH_WATER = 1 << 20;

/** A `ByteDuplex` over a server-side WebSocket carrying MQTT in binary frames. */
export function duplexOfWebSocket(socket: WebSocket, maxPacketBytes: number, remoteAddress?: string): ByteDuplex {
  socket.binaryType = "arraybuffer";
  let released = () => {};
  const gone = new Promise<void>((resolve) => released = resolve);
  socket.addEventListener("close", () => released(), { once: true });
  const duplex = new ByteDuplex(
    {
      write: async (bytes) => {
        if (socket.readyState !== WebSocket.OPEN) throw new Error("WebSocket is closed");
        socket.send(bytes);
        // A client that stops reading builds up here; aedes' drainTimeout then cuts it off.
        while (socket.bufferedAmount > WS_HIGH_WATER && socket.readyState === WebSocket.OPEN) {
          await new Promise((r) => setTimeout(r, 10));
        }
      },
      close: () => {
        if (socket.readyState === WebSocket.OPEN || socket.readyState === WebSocket.CONNECTING) socket.close();
      },
      gone,
    },
    maxPacketBytes,
    remoteAddress,
  );
  socket.onmessage = (e) => {
    if (!(e.data instanceof ArrayBuffer)) {
      duplex.destroy(new Error("MQTT over WebSocket needs binary frames"));
      return;
    }
    duplex.receive(new Uint8Array(e.data));
  };
  socket.onclose = () => duplex.receiveEnd();
  socket.onerror = () => duplex.destroy(new Error("WebSocket failed"));
  return duplex;
}
