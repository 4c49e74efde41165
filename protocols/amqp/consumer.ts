import type { Channel, ConfirmChannel, ConsumeMessage, Message } from "amqplib";
import type { Clock } from "../../core/clock.ts";
import type { Envelope, IngestResult } from "../../core/envelope.ts";
import { describeError } from "../../core/errors.ts";
import type { Logger } from "../../core/log.ts";
import { settleWithin } from "../settle.ts";
import { AckWindow } from "./ack_window.ts";
import { STOP_CALL_MS } from "./connection.ts";
import { deadLetter } from "./dead_letters.ts";
import { TOKEN_HEADER } from "./delivery.ts";
import type { OrderedLanes } from "./ordered_lanes.ts";
import { type Outcome, outcomeOf } from "./outcome.ts";
import { orderKeyOf } from "./routing_key.ts";
import type { AmqpStats } from "./stats.ts";
import { INGEST_QUEUE } from "./topology.ts";

export interface ConsumerDeps {
  /** Shared by every connection, so a device's order holds across reconnects. */
  readonly lanes: OrderedLanes;
  /** Reads a delivery into an envelope (route, principal, body, id); throws a refusal. */
  readonly toEnvelope: (msg: ConsumeMessage, receivedAt: number) => Promise<Envelope>;
  readonly accept: (envelope: Envelope) => Promise<IngestResult>;
  /** Told of every dead-lettered message (for the refused log). */
  readonly onRefused: (
    msg: ConsumeMessage,
    refusal: Extract<Outcome, { action: "dead-letter" }>,
    envelope?: Envelope,
  ) => void;
  /** Told of a delivery refused before it became an envelope (for the metrics). */
  readonly onUnreadable: (err: unknown) => void;
  /** The consumer was cancelled by the broker (queue deleted): get a new connection. */
  readonly onLost: (reason: string) => void;
  readonly clock: Clock;
  readonly log: Logger;
  readonly stats: AmqpStats;
  readonly prefetch: number;
}

/**
 * Consumes `iot.ingest` on one channel: each delivery goes through ingest in its device's lane and
 * is acked only after the commit; a refused one is acked only after `iot.dlx` confirmed its copy.
 * Acks are pipelined (see `AckWindow`). When the channel is gone, unacked deliveries come back.
 */
export class IngestConsumer {
  readonly #window = new AckWindow();
  #consumerTag: string | null = null;
  #abandoned = false;
  #flushing = false;
  readonly #wakers = new Set<() => void>();

  constructor(
    private readonly ch: Channel,
    private readonly confirm: ConfirmChannel,
    private readonly deps: ConsumerDeps,
  ) {}

  async start(): Promise<void> {
    await this.ch.prefetch(this.deps.prefetch);
    const { consumerTag } = await this.ch.consume(INGEST_QUEUE, (m) => this.#onMessage(m), { noAck: false });
    this.#consumerTag = consumerTag;
  }

  /** The channel is gone: stop retrying and acking (the broker redelivers what was not acked). */
  abandon(): void {
    this.#abandoned = true;
    for (const wake of this.#wakers) wake();
  }

  /**
   * Stops taking deliveries, lets those in flight finish, and sends their acks, all within
   * `timeoutMs`. A broker that does not answer the cancel in time is not waited for: it would not
   * take the acks either, and the connection is dropped next (what was not acked comes back).
   */
  async stop(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    if (this.#consumerTag && !this.#abandoned) {
      await settleWithin(this.ch.cancel(this.#consumerTag), Math.min(STOP_CALL_MS, timeoutMs));
    }
    await settleWithin(this.deps.lanes.idle(), Math.max(0, deadline - Date.now()));
    this.#flush();
    this.abandon();
  }

  #onMessage(msg: ConsumeMessage | null): void {
    if (msg === null) {
      this.deps.onLost(`the broker cancelled the consumer of ${INGEST_QUEUE}`);
      return;
    }
    const receivedAt = this.deps.clock.now();
    this.deps.stats.received++;
    if (msg.fields.redelivered) this.deps.stats.redelivered++;
    this.#window.track(msg.fields.deliveryTag);
    const header = msg.properties.headers?.[TOKEN_HEADER];
    const key = orderKeyOf(msg.fields.routingKey, typeof header === "string" ? header : undefined);
    this.deps.lanes.run(key, () => this.#handle(msg, receivedAt));
  }

  async #handle(msg: ConsumeMessage, receivedAt: number): Promise<void> {
    for (let attempt = 0; !this.#abandoned; attempt++) {
      let envelope: Envelope | undefined;
      let outcome: Outcome;
      let refusal: unknown;
      try {
        envelope = await this.deps.toEnvelope(msg, receivedAt);
        const result = await this.deps.accept(envelope);
        if (result.duplicate) this.deps.stats.duplicates++;
        else this.deps.stats.accepted++;
        return this.#done(msg);
      } catch (err) {
        outcome = outcomeOf(err, attempt);
        refusal = err;
      }
      if (outcome.action === "retry") {
        await this.#pause(outcome.delayMs);
        continue;
      }
      try {
        await deadLetter(this.confirm, msg, outcome.code, outcome.reason);
      } catch (err) {
        if (this.#abandoned) return;
        this.deps.log.warn(`AMQP: publishing a refused message to iot.dlx failed: ${describeError(err)}`);
        await this.#pause(1000);
        continue;
      }
      const counts = this.deps.stats.deadLettered;
      counts[outcome.code] = (counts[outcome.code] ?? 0) + 1;
      if (!envelope) this.deps.onUnreadable(refusal); // ingest counted the ones it refused
      this.deps.onRefused(msg, outcome, envelope);
      return this.#done(msg);
    }
  }

  #done(msg: Message): void {
    this.#window.done(msg.fields.deliveryTag);
    if (this.#flushing) return;
    this.#flushing = true;
    // Deliveries committed by the same group commit finish together: one flush acks them all.
    setTimeout(() => {
      this.#flushing = false;
      this.#flush();
    }, 0);
  }

  #flush(): void {
    if (this.#abandoned || !this.#window.pending) return;
    try {
      for (const a of this.#window.take()) {
        this.ch.ack({ fields: { deliveryTag: a.tag } } as Message, a.multiple);
      }
    } catch (err) {
      // The channel closed under us; the broker redelivers what was not acked.
      this.deps.log.warn(`AMQP: acking failed: ${describeError(err)}`);
    }
  }

  #pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.#wakers.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.#wakers.add(wake);
    });
  }
}
