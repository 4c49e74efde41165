import { describeError } from "../../core/errors.ts";
import type { Logger } from "../../core/log.ts";

/** PEM certificate chain and key for mqtts. */
export interface TlsPem {
  readonly cert: string;
  readonly key: string;
}

export interface ListenOptions {
  readonly port: number;
  readonly hostname: string;
  readonly tls?: TlsPem;
  readonly onConn: (conn: Deno.Conn) => void;
  readonly log: Logger;
}

/** A running TCP (or TLS) listener. */
export interface MqttListener {
  readonly port: number;
  readonly tls: boolean;
  close(): void;
}

/** Listens for MQTT connections; throws `Deno.errors.AddrInUse` when the port is taken. */
export function listenMqtt(options: ListenOptions): MqttListener {
  const listener = options.tls
    ? Deno.listenTls({ port: options.port, hostname: options.hostname, cert: options.tls.cert, key: options.tls.key })
    : Deno.listen({ port: options.port, hostname: options.hostname });
  let closed = false;
  (async () => {
    try {
      for await (const conn of listener) {
        // Acks are small packets: send them at once.
        if ("setNoDelay" in conn && typeof conn.setNoDelay === "function") conn.setNoDelay(true);
        options.onConn(conn);
      }
    } catch (err) {
      if (!closed) options.log.warn(`MQTT listener stopped: ${describeError(err)}`);
    }
  })();
  return {
    port: listener.addr.port,
    tls: options.tls !== undefined,
    close: () => {
      if (closed) return;
      closed = true;
      try {
        listener.close();
      } catch {
        // already closed
      }
    },
  };
}

/** A PEM setting is either the PEM text itself or the path of a file holding it. */
export async function readPem(setting: string): Promise<string> {
  return setting.includes("-----BEGIN") ? setting : await Deno.readTextFile(setting);
}
