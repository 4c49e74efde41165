/**
 * The AMQP 0-9-1 adapter (RabbitMQ): ingest from `iot.ingest`, refusals to `iot.dlx`, topic
 * re-publish to `iot.broadcast`.
 *
 * @module
 */
export { AmqpAdapter, type AmqpAdapterOptions, startAmqpAdapter } from "./adapter.ts";
export type { AmqpStats } from "./stats.ts";
export { CODE_HEADER, DROPPED_HEADER, REASON_HEADER } from "./dead_letters.ts";
export { TOKEN_HEADER } from "./delivery.ts";
export {
  BROADCAST_EXCHANGE,
  DEAD_LETTER_EXCHANGE,
  DEAD_LETTER_QUEUE,
  declareTopology,
  INGEST_EXCHANGE,
  INGEST_QUEUE,
} from "./topology.ts";
