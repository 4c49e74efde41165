import type { ChannelModel, ConsumeMessage } from "amqplib";
import type { Envelope } from "../../core/envelope.ts";
import { describeError } from "../../core/errors.ts";
import { sleep } from "../../core/sleep.ts";
import { CHANNEL_NAME, looksLikeToken } from "../../core/names.ts";
import type { Sluice } from "../../sluice.ts";
import type { Adapter, Check } from "../adapter.ts";
import { KvLease } from "../kv_lease.ts";
import { type Publish, type Republisher, republisherOf } from "../republisher.ts";
import { type Backoff, ReconnectingConnection } from "./connection.ts";
import { IngestConsumer } from "./consumer.ts";
import { decodeDelivery, TOKEN_HEADER } from "./delivery.ts";
import { OrderedLanes } from "./ordered_lanes.ts";
import type { Outcome } from "./outcome.ts";
import { principalOf } from "./principal.ts";
import { broadcastOn } from "./republisher.ts";
import { type AmqpStats, newStats } from "./stats.ts";
import { BROADCAST_EXCHANGE, declareTopology, INGEST_QUEUE } from "./topology.ts";

export interface AmqpAdapterOptions {
  readonly url: string;
  /** Unacked deliveries the broker may hand over at once (hundreds: many commits in flight is the fast path). */
  readonly prefetch?: number;
  /** How often the channel list is read to re-publish channels created since (ms). */
  readonly channelPollMs?: number;
  readonly backoff?: Backoff;
}

/**
 * How long `close()` lets deliveries in flight commit (the cancel included) before closing the
 * connection anyway, which itself takes at most `STOP_CALL_MS`: well within the 5 s a stop gets.
 */
const CLOSE_GRACE_MS = 2000;

/**
 * In deploy mode several instances run and every one would re-publish each topic message: one at a
 * time does, under this lease (renewed every `REPUBLISH_RENEW_MS`; a stopped holder's is taken over
 * within its TTL).
 */
const REPUBLISH_LEASE_KEY: Deno.KvKey = ["amqp", "republisher"];
const REPUBLISH_LEASE_TTL_MS = 10_000;
const REPUBLISH_RENEW_MS = 3_000;

/**
 * The AMQP adapter: consumes `iot.ingest` into the one ingest path (ack after the commit, refusals
 * to `iot.dlx`), re-publishes topic messages to `iot.broadcast`, and reconnects with backoff,
 * reporting itself degraded while RabbitMQ is away.
 */
export class AmqpAdapter implements Adapter {
  readonly name = "amqp";
  readonly stats: AmqpStats = newStats();
  /** The name RabbitMQ shows for this adapter's connection. */
  readonly connectionName = `sluice ${crypto.randomUUID().slice(0, 8)}`;
  readonly #lanes = new OrderedLanes();
  readonly #conn: ReconnectingConnection;
  /** Re-publishes topic messages: always in local mode, while this instance holds the lease in deploy mode. */
  #republisher: Republisher | null = null;
  /** The current connection's way to `iot.broadcast`. */
  #publish: Publish | null = null;
  readonly #lease: KvLease | null;
  readonly #stop = new AbortController();
  #leaseLoop: Promise<void> = Promise.resolve();
  #consumer: IngestConsumer | null = null;
  #closing: Promise<void> | null = null;

  constructor(private readonly sluice: Sluice, private readonly options: AmqpAdapterOptions) {
    this.#conn = new ReconnectingConnection({
      url: options.url,
      name: this.connectionName,
      log: sluice.log,
      backoff: options.backoff,
      setup: (model) => this.#setup(model),
      teardown: () => this.#teardown(),
    });
    this.#lease = sluice.mode === "deploy"
      ? new KvLease(sluice.kv, REPUBLISH_LEASE_KEY, sluice.instance, REPUBLISH_LEASE_TTL_MS, sluice.clock)
      : null;
  }

  /**
   * Notes the channels to re-publish (in deploy mode once this instance holds the lease), then
   * connects in the background (Sluice serves meanwhile).
   */
  async start(): Promise<void> {
    if (this.#lease) {
      this.#leaseLoop = this.#holdRepublishing(this.#lease).catch((err) =>
        this.sluice.log.error(`AMQP: re-publishing stopped: ${describeError(err)}`)
      );
    } else await this.#startRepublishing();
    this.#conn.start();
  }

  health(): Check {
    return this.#conn.ready ? "ok" : "degraded";
  }

  close(): Promise<void> {
    return this.#closing ??= (async () => {
      this.#stop.abort();
      await this.#consumer?.stop(CLOSE_GRACE_MS);
      await this.#leaseLoop;
      this.#republisher?.close();
      this.#republisher = null;
      await this.#conn.close();
      await this.#lease?.release().catch(() => {});
    })();
  }

  /** Notes where each channel stands in KV and re-publishes from there, through the connection once there is one. */
  async #startRepublishing(): Promise<void> {
    const republisher = republisherOf(this.sluice, "AMQP", {
      pollMs: this.options.channelPollMs ?? 2000,
      onFailure: (reason) => this.#conn.reset(reason),
      onPublished: (count) => this.stats.republished += count,
    });
    await republisher.init();
    if (this.#stop.signal.aborted) return republisher.close();
    this.#republisher = republisher;
    if (this.#publish) await republisher.attach(this.#publish);
  }

  /** Deploy mode: re-publishes while this instance holds the lease, and stops when it cannot renew it. */
  async #holdRepublishing(lease: KvLease): Promise<void> {
    const signal = this.#stop.signal;
    let said = false, failed = false;
    while (!signal.aborted) {
      // null: the claim failed (KV's trouble); what this instance does stays as it is until a claim works.
      let holding: boolean | null = null;
      try {
        holding = await lease.claim();
        failed = false;
      } catch (err) {
        if (!failed) this.sluice.log.warn(`AMQP: the re-publishing lease cannot be taken: ${describeError(err)}`);
        failed = true;
      }
      if (signal.aborted) break;
      try {
        if (holding === true && !this.#republisher) await this.#startRepublishing();
      } catch (err) {
        this.sluice.log.warn(`AMQP: reading the channels to re-publish failed: ${describeError(err)}`);
      }
      if (holding === false && this.#republisher) {
        this.#republisher.close();
        this.#republisher = null;
      }
      if (holding === false && !said) {
        this.sluice.log.info(
          `AMQP: another instance re-publishes topic messages to ${BROADCAST_EXCHANGE}; this one takes over when ` +
            `it stops (within ${REPUBLISH_LEASE_TTL_MS / 1000} s)`,
        );
      }
      if (holding !== null) said = !holding;
      await sleep(REPUBLISH_RENEW_MS, signal);
    }
  }

  async #setup(model: ChannelModel): Promise<void> {
    const ch = await model.createChannel();
    const confirm = await model.createConfirmChannel();
    for (const c of [ch, confirm]) {
      c.on("error", (err: Error) => this.sluice.log.warn(`AMQP: channel error: ${describeError(err)}`));
      c.on("close", () => this.#conn.reset("a channel closed"));
    }
    const { ingestConsumers } = await declareTopology(ch);
    // At the first connect only: after a reconnect the broker may still count this Sluice's own old consumer.
    if (ingestConsumers > 0 && this.sluice.mode === "local" && this.stats.connections === 0) {
      // Another Sluice (or a client) consumes there: with its own KV it refuses the devices it does not know.
      this.sluice.log.warn(
        `AMQP: ${INGEST_QUEUE} already has ${ingestConsumers} consumer(s); this Sluice takes deliveries only ` +
          `after they stop (one active consumer at a time). A Sluice with its own KV file refuses every device it ` +
          `does not know: give each Sluice its own vhost`,
      );
    }
    this.#publish = broadcastOn(confirm);
    await this.#republisher?.attach(this.#publish);
    const consumer = new IngestConsumer(ch, confirm, {
      lanes: this.#lanes,
      toEnvelope: (msg, receivedAt) => this.#toEnvelope(msg, receivedAt),
      accept: (envelope) => this.sluice.ingest.accept(envelope),
      onRefused: (msg, refusal, envelope) => this.#refused(msg, refusal, envelope),
      // Ingest counts what it refuses; a delivery that never became an envelope is counted here.
      onUnreadable: (err) => this.sluice.ingest.refused("amqp", err),
      onLost: (reason) => this.#conn.reset(reason),
      clock: this.sluice.clock,
      log: this.sluice.log,
      stats: this.stats,
      prefetch: this.options.prefetch ?? 500,
    });
    this.#consumer = consumer;
    await consumer.start();
    this.stats.connections++;
  }

  #teardown(): void {
    this.#consumer?.abandon();
    this.#consumer = null;
    this.#publish = null;
    this.#republisher?.detach();
  }

  async #toEnvelope(msg: ConsumeMessage, receivedAt: number): Promise<Envelope> {
    const d = decodeDelivery({
      routingKey: msg.fields.routingKey,
      content: msg.content,
      contentType: msg.properties.contentType,
      messageId: msg.properties.messageId,
      headers: msg.properties.headers,
    }, this.sluice.config.MAX_BODY_BYTES);
    return {
      principal: await principalOf(d.token, this.sluice.admin, this.sluice.devices),
      channel: d.channel,
      kind: d.kind,
      body: d.body,
      unparsedText: d.unparsedText,
      id: d.id,
      protocol: "amqp",
      receivedAt,
      brokered: true,
    };
  }

  #refused(msg: ConsumeMessage, refusal: Extract<Outcome, { action: "dead-letter" }>, envelope?: Envelope): void {
    if (!refusal.record) return;
    const record = (device: string | null, channel: string | undefined) =>
      this.sluice.refused.record({
        protocol: "amqp",
        device,
        channel,
        code: refusal.code,
        reason: refusal.reason,
        payload: msg.content,
      });
    if (envelope) return record(envelope.principal.kind === "device" ? envelope.principal.id : null, envelope.channel);
    // Never an envelope (its body or routing key is wrong): the sender is still told by its token.
    const { token, channel } = senderHints(msg);
    const device = token ? this.sluice.devices.authenticate(token).catch(() => null) : Promise.resolve(null);
    device.then((id) => record(id, channel));
  }
}

/**
 * The token and channel a delivery names, read as far as its routing key (`<token>/<channel>/…`)
 * and `sluice-token` header allow, for a refusal's record.
 */
function senderHints(msg: ConsumeMessage): { token?: string; channel?: string } {
  const parts = msg.fields.routingKey.split("/");
  const header = msg.properties.headers?.[TOKEN_HEADER];
  // `<token>/messages`: the channel left out, the token is still the sender's.
  const keyToken = parts.length === 3 || (parts.length === 2 && looksLikeToken(parts[0]!)) ? parts[0] : undefined;
  const token = keyToken ?? (typeof header === "string" ? header : undefined);
  const channel = parts.length >= 2 ? parts.at(-2)! : undefined;
  const named = channel !== undefined && CHANNEL_NAME.test(channel) && !looksLikeToken(channel);
  return { token: token || undefined, channel: named ? channel : undefined };
}

/** Starts the AMQP adapter for `AMQP_URL`; it connects in the background. */
export async function startAmqpAdapter(
  sluice: Sluice,
  options: Partial<AmqpAdapterOptions> = {},
): Promise<AmqpAdapter> {
  const url = options.url ?? sluice.config.AMQP_URL;
  if (!url) throw new Error("AMQP_URL is not set");
  const adapter = new AmqpAdapter(sluice, { ...options, url });
  await adapter.start();
  return adapter;
}
