import { Buffer } from "node:buffer";
import { type ChannelModel, type ConfirmChannel, connect } from "amqplib";
import { DEAD_LETTER_QUEUE, declareTopology, INGEST_EXCHANGE, INGEST_QUEUE } from "../../protocols/amqp/mod.ts";
import { AMQP_URL, ensureRabbitMq } from "../helpers/amqp.ts";
import type { Protocol } from "./crash_run.ts";

export interface AmqpProtocolOptions {
  /**
   * Mean pause after each confirmed message (random 0 to twice this), so a device's messages
   * spread over the run and kills land while Sluice is consuming, not after it drained a burst.
   */
  readonly spacingMs?: number;
}

/**
 * The AMQP sender: publishes to `iot` with routing key `<token>/blog_queuing/invoke` and
 * `messageId` = the message id, on a confirm channel. For AMQP "acknowledged" is RabbitMQ's
 * confirm: from then on the message is RabbitMQ's to keep, and Sluice must process it exactly
 * once across kills (it acks after the commit and deduplicates by messageId).
 */
export function amqpProtocol(options: AmqpProtocolOptions = {}): Protocol {
  const spacingMs = options.spacingMs ?? 0;
  return {
    name: "amqp",
    env: { AMQP_URL },
    // Queue names are fixed by the contract: start from an empty iot.ingest and iot.dead, declared
    // as Sluice declares them, so nothing published before Sluice's first start is unroutable.
    prepare: async () => {
      await ensureRabbitMq();
      const model = await connect(AMQP_URL);
      try {
        const ch = await model.createChannel();
        await ch.deleteQueue(INGEST_QUEUE);
        await ch.deleteQueue(DEAD_LETTER_QUEUE);
        await declareTopology(ch);
        await ch.close();
      } finally {
        await model.close();
      }
    },
    connect: () => {
      let open: Promise<{ model: ChannelModel; ch: ConfirmChannel }> | null = null;
      const returned = new Set<string>();
      const channel = () =>
        open ??= (async () => {
          const model = await connect(AMQP_URL, { clientProperties: { connection_name: "sluice crash test" } });
          model.on("error", () => {});
          model.on("close", () => open = null);
          const ch = await model.createConfirmChannel();
          ch.on("error", () => {});
          ch.on("close", () => open = null);
          // An unroutable message is returned before its confirm: then it was not kept, so not acknowledged.
          ch.on("return", (m: { properties: { messageId?: string } }) => returned.add(String(m.properties.messageId)));
          return { model, ch };
        })().catch((err) => {
          open = null;
          throw err;
        });
      return Promise.resolve({
        send: async (_device, token, id, csv) => {
          const { ch } = await channel();
          const body = Buffer.from(JSON.stringify({ method: "blog/queues/processor", params: { data: csv } }));
          await new Promise<void>((resolve, reject) => {
            ch.publish(
              INGEST_EXCHANGE,
              `${token}/blog_queuing/invoke`,
              body,
              { persistent: true, messageId: id, contentType: "application/json", mandatory: true },
              (err) => err ? reject(new Error(`AMQP publish not confirmed: ${err}`)) : resolve(),
            );
          });
          if (returned.delete(id)) throw new Error("AMQP message returned as unroutable");
          if (spacingMs > 0) await new Promise((r) => setTimeout(r, Math.random() * 2 * spacingMs));
        },
        close: async () => {
          const c = await open?.catch(() => null);
          await c?.model.close().catch(() => {});
        },
      });
    },
  };
}
