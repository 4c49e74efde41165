import { describeError } from "../../core/errors.ts";
import type { Logger } from "../../core/log.ts";
import { sleep } from "../../core/sleep.ts";

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

/** How long the listener waits after a failed accept before it accepts again. */
const ACCEPT_AGAIN_MS = 1000;

/** Listens for MQTT connections; throws `Deno.errors.AddrInUse` when the port is taken. */
export function listenMqtt(options: ListenOptions): MqttListener {
  const listener = options.tls
    ? Deno.listenTls({ port: options.port, hostname: options.hostname, cert: options.tls.cert, key: options.tls.key })
    : Deno.listen({ port: options.port, hostname: options.hostname });
  let closed = false;
  const stop = new AbortController();
  (async () => {
    for (let failures = 0; !closed;) {
      let conn: Deno.Conn;
      try {
        conn = await listener.accept();
      } catch (err) {
        if (closed) return;
        if (err instanceof Deno.errors.BadResource) {
          options.log.warn(`MQTT listener stopped: ${describeError(err)}`);
          return;
        }
        // At the open-file limit (connections past `ulimit -n`): said at the first failure and once a minute after.
        if (failures++ % 60 === 0) {
          options.log.warn(`MQTT listener cannot accept: ${describeError(err)}; trying again every second`);
        }
        await sleep(ACCEPT_AGAIN_MS, stop.signal);
        continue;
      }
      if (failures > 0) options.log.info("MQTT listener accepts again");
      failures = 0;
      // Acks are small packets: send them at once.
      if ("setNoDelay" in conn && typeof conn.setNoDelay === "function") conn.setNoDelay(true);
      options.onConn(conn);
    }
  })();
  return {
    port: listener.addr.port,
    tls: options.tls !== undefined,
    close: () => {
      if (closed) return;
      closed = true;
      stop.abort();
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
