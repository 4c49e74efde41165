import type { Channel } from "amqplib";

/** Exchange devices publish to; routing key `<token>/<channel>/invoke|messages`. */
export const INGEST_EXCHANGE = "iot";
/** The queue Sluice consumes, bound to `iot` with `#`, one active consumer at a time. */
export const INGEST_QUEUE = "iot.ingest";
/** Where Sluice publishes the messages it refuses (header `sluice-reason`). */
export const DEAD_LETTER_EXCHANGE = "iot.dlx";
/** The queue that keeps refused messages, bound to `iot.dlx` with `#`. */
export const DEAD_LETTER_QUEUE = "iot.dead";
/** Where Sluice re-publishes topic messages, routing key = channel. Never `iot`: that would loop. */
export const BROADCAST_EXCHANGE = "iot.broadcast";

/**
 * Declares Sluice's topology. Idempotent: every declaration names the same type, durability and
 * arguments each time, so it runs on every (re)connect and on every instance. Resolves how many
 * consumers `iot.ingest` had already.
 */
export async function declareTopology(ch: Channel): Promise<{ ingestConsumers: number }> {
  await ch.assertExchange(INGEST_EXCHANGE, "topic", { durable: true });
  const ingest = await ch.assertQueue(INGEST_QUEUE, {
    durable: true,
    arguments: { "x-single-active-consumer": true },
  });
  await ch.bindQueue(INGEST_QUEUE, INGEST_EXCHANGE, "#");
  await ch.assertExchange(DEAD_LETTER_EXCHANGE, "topic", { durable: true });
  await ch.assertQueue(DEAD_LETTER_QUEUE, { durable: true });
  await ch.bindQueue(DEAD_LETTER_QUEUE, DEAD_LETTER_EXCHANGE, "#");
  await ch.assertExchange(BROADCAST_EXCHANGE, "topic", { durable: true });
  return { ingestConsumers: ingest.consumerCount };
}
