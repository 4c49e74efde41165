/**
 * `deno task sim:amqp`: a fleet of pumps publishing the seed's readings to RabbitMQ.
 *
 *   deno task sim:amqp --devices 20 --rate 500 --duration 30 --url amqp://guest:guest@127.0.0.1:5672 --admin-token sla_…
 *
 * Messages go to exchange `iot` with routing key `<token>/blog_queuing/invoke` and a `messageId`
 * (Sluice deduplicates redeliveries); the publisher confirm is the acknowledgement. Sluice acks
 * the broker only after its commit, so a confirmed message is safe in RabbitMQ until then. Sluice
 * declares `iot` when it starts with `AMQP_URL`: the simulator checks it is there before it begins.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { type ConfirmChannel, connect } from "amqplib";
import { simMain } from "./cli.ts";
import { invokePayload } from "./fleet.ts";
import type { Transport } from "./runner.ts";
import { withoutPassword } from "./urls.ts";

const EXCHANGE = "iot";

/** One connection and confirm channel for the whole fleet. */
export function amqpTransport(url: string, channel = "blog_queuing"): Transport {
  const where = withoutPassword(url);
  let opened: Promise<{ close(): Promise<void>; ch: ConfirmChannel }> | null = null;
  let log: (line: string) => void = () => {};
  /** Set once the exchange was found: errors before are the opening's, thrown as one line. */
  let ready = false;
  let closing = false;
  /** Why the connection or its channel is closed; null while they are open. */
  let down: string | null = null;
  const reported = new Set<string>();
  const tell = (cause: string) => {
    if (!ready || closing || reported.has(cause)) return;
    reported.add(cause);
    log(`AMQP ${where}: ${cause}`);
  };
  const open = () =>
    opened ??= (async () => {
      const conn = await connect(url, { clientProperties: { connection_name: "sluice sim:amqp" } }).catch((err) => {
        throw new Error(openingError(err, url, where));
      });
      // Without listeners, an error the broker sends (a closed channel, a lost connection) would end the process.
      conn.on("error", (err: Error) => tell(down = err.message));
      conn.on("close", (err?: Error) => tell(down = err?.message ?? down ?? "connection closed"));
      const ch = await conn.createConfirmChannel();
      ch.on("error", (err: Error) => tell(down = err.message));
      ch.on("close", () => tell(down ??= "channel closed"));
      try {
        await ch.checkExchange(EXCHANGE);
      } catch (err) {
        await conn.close().catch(() => {});
        throw new Error(
          String(err).includes("404")
            ? `exchange ${EXCHANGE} not found on ${where}: start Sluice with AMQP_URL set first`
            : `Checking exchange ${EXCHANGE} on ${where}: ${err instanceof Error ? err.message : err}`,
        );
      }
      ready = true;
      return { ch, close: () => conn.close() };
    })();
  return {
    name: "amqp",
    check: async () => void await open(),
    async connect({ token }, logLine) {
      log = logLine;
      const { ch } = await open();
      return ({ id, reading }) =>
        new Promise<void>((resolve, reject) => {
          if (down !== null) return reject(new Error(`not connected: ${down}`));
          ch.publish(EXCHANGE, `${token}/${channel}/invoke`, Buffer.from(invokePayload(reading)), {
            persistent: true,
            messageId: id,
            contentType: "application/json",
          }, (err) => err ? reject(err) : resolve());
        });
    },
    close: async () => {
      closing = true;
      if (opened) await (await opened.catch(() => null))?.close().catch(() => {});
    },
  };
}

/** One line for a connection that could not be opened (amqplib's can be cryptic). */
function openingError(err: Error, url: string, where: string): string {
  if (err.message.startsWith("Expected ConnectionOpenOk")) {
    const u = new URL(url);
    const vhost = decodeURIComponent(u.pathname.slice(1)) || "/";
    return `RabbitMQ at ${where} would not open vhost "${vhost}": it does not exist, or ${
      decodeURIComponent(u.username) || "guest"
    } may not use it`;
  }
  if (err.message.includes("ACCESS-REFUSED")) return `RabbitMQ at ${where} refused the login (--url's user, password)`;
  return `Cannot reach RabbitMQ at ${where} (--url): ${err.message}`;
}

if (import.meta.main) {
  await simMain(
    "sim:amqp",
    Deno.env.get("AMQP_URL") ?? "amqp://guest:guest@127.0.0.1:5672",
    (o) => amqpTransport(o.url),
  );
}
