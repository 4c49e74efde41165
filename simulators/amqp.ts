/**
 * `deno task sim:amqp`: a fleet of pumps publishing the seed's readings to RabbitMQ.
 *
 *   deno task sim:amqp --devices 20 --rate 500 --duration 30 --url amqp://guest:guest@127.0.0.1:5672 --admin-token sla_…
 *
 * Messages go to exchange `iot` with routing key `<token>/blog_queuing/invoke` and a `messageId`
 * (Sluice deduplicates redeliveries); the publisher confirm is the acknowledgement. Sluice acks
 * the broker only after its commit, so a confirmed message is safe in RabbitMQ until then.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { type ConfirmChannel, connect } from "amqplib";
import { invokePayload } from "./fleet.ts";
import { simMain, type Transport } from "./runner.ts";

/** One connection and confirm channel for the whole fleet. */
export function amqpTransport(url: string, channel = "blog_queuing"): Transport {
  let opened: Promise<{ close(): Promise<void>; ch: ConfirmChannel }> | null = null;
  const open = () =>
    opened ??= (async () => {
      const conn = await connect(url, { clientProperties: { connection_name: "sluice sim:amqp" } });
      const ch = await conn.createConfirmChannel();
      return { ch, close: () => conn.close() };
    })();
  return {
    name: "amqp",
    async connect({ token }) {
      const { ch } = await open();
      return ({ id, reading }) =>
        new Promise<void>((resolve, reject) => {
          ch.publish("iot", `${token}/${channel}/invoke`, Buffer.from(invokePayload(reading)), {
            persistent: true,
            messageId: id,
            contentType: "application/json",
          }, (err) => err ? reject(err) : resolve());
        });
    },
    close: async () => {
      if (opened) await (await opened).close().catch(() => {});
    },
  };
}

if (import.meta.main) {
  await simMain(
    "sim:amqp",
    Deno.env.get("AMQP_URL") ?? "amqp://guest:guest@127.0.0.1:5672",
    (o) => amqpTransport(o.url),
  );
}
