import type { ConfirmChannel, Options } from "amqplib";
import { describeError } from "../../core/errors.ts";
import type { Logger } from "../../core/log.ts";
import { isSystemChannel } from "../../core/names.ts";
import type { Subscription, TopicHub, TopicMessage } from "../../engine/topic_hub.ts";
import type { ChannelRegistry } from "../../store/channel_registry.ts";
import { publishConfirmed } from "./confirm.ts";
import type { AmqpStats } from "./stats.ts";
import { BROADCAST_EXCHANGE } from "./topology.ts";

export interface RepublisherDeps {
  readonly topics: TopicHub;
  readonly channels: ChannelRegistry;
  readonly log: Logger;
  readonly stats: AmqpStats;
  /** How often the channel list is read to follow channels created since (ms). */
  readonly pollMs: number;
  /** A publish was not confirmed: get a new connection (re-publishing resumes after the last confirmed seq). */
  readonly onFailure: (reason: string) => void;
}

/** Messages a channel may buffer before its feed is cut and later resumed from the log. */
const MAX_BUFFERED = 10_000;
const BATCH = 256;

/** The AMQP form of a topic message: text as text, anything else as JSON. */
export function encodeTopicMessage(m: TopicMessage): { content: Uint8Array; options: Options.Publish } {
  const text = typeof m.message === "string";
  return {
    content: new TextEncoder().encode(text ? m.message as string : JSON.stringify(m.message)),
    options: {
      persistent: true,
      contentType: text ? "text/plain" : "application/json",
      messageId: `${m.channel}/${m.seq}`,
      timestamp: Math.floor(m.at / 1000),
      headers: { "sluice-seq": m.seq, "sluice-sender": m.sender },
    },
  };
}

/**
 * Re-publishes the topic messages of every channel (not Sluice's own `_` channels) to
 * `iot.broadcast` with routing key = channel, on a confirm channel. Channels that exist at start
 * are followed from their next message; channels created later (found by reading the channel list
 * every `pollMs`) from their first. After a reconnect each channel resumes after its last confirmed
 * message, so messages published while RabbitMQ was away go out once it is back.
 */
export class Republisher {
  readonly #followers = new Map<string, Follower>();
  #ch: ConfirmChannel | null = null;
  #timer: ReturnType<typeof setInterval> | null = null;

  constructor(private readonly deps: RepublisherDeps) {}

  /** Notes every channel and where its next message will be; call once before `attach`. */
  async init(): Promise<void> {
    for (const c of await this.deps.channels.list()) {
      if (!isSystemChannel(c.name)) this.#add(c.name, (await this.deps.topics.head(c.name)) + 1);
    }
    this.#timer = setInterval(() => this.#discover(), this.deps.pollMs);
    Deno.unrefTimer(this.#timer);
  }

  /** Starts re-publishing on a fresh confirm channel. */
  async attach(ch: ConfirmChannel): Promise<void> {
    this.#ch = ch;
    await this.#discover();
    await Promise.all([...this.#followers.values()].map((f) => f.attach(ch)));
  }

  /** The channel is gone: stop; `attach` resumes after the last confirmed message. */
  detach(): void {
    this.#ch = null;
    for (const f of this.#followers.values()) f.detach();
  }

  close(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.detach();
  }

  async #discover(): Promise<void> {
    try {
      for (const c of await this.deps.channels.list()) {
        if (isSystemChannel(c.name) || this.#followers.has(c.name)) continue;
        const f = this.#add(c.name, 1); // created after the start: everything it has is new
        if (this.#ch) await f.attach(this.#ch);
      }
    } catch (err) {
      this.deps.log.warn(`AMQP: reading the channel list failed: ${describeError(err)}`);
    }
  }

  #add(channel: string, next: number): Follower {
    const f = new Follower(channel, next, this.deps);
    this.#followers.set(channel, f);
    return f;
  }
}

/** One channel's feed to `iot.broadcast`: buffers what the hub delivers and publishes it in confirmed batches. */
class Follower {
  #sub: Subscription | null = null;
  #ch: ConfirmChannel | null = null;
  #buffer: TopicMessage[] = [];
  #draining = false;
  #cut = false;

  constructor(private readonly channel: string, private next: number, private readonly deps: RepublisherDeps) {}

  async attach(ch: ConfirmChannel): Promise<void> {
    if (this.#ch === ch) return;
    this.detach();
    this.#ch = ch;
    await this.#subscribe();
  }

  detach(): void {
    this.#sub?.close();
    this.#sub = null;
    this.#ch = null;
    this.#buffer = [];
    this.#cut = false;
  }

  async #subscribe(): Promise<void> {
    const ch = this.#ch;
    const sub = await this.deps.topics.subscribe(this.channel, this.next, (m) => this.#deliver(ch, m));
    if (this.#ch !== ch) sub.close();
    else this.#sub = sub;
  }

  #deliver(ch: ConfirmChannel | null, m: TopicMessage): void {
    if (ch === null || ch !== this.#ch || this.#cut) return;
    this.#buffer.push(m);
    if (this.#buffer.length >= MAX_BUFFERED) {
      // RabbitMQ is slower than the channel: stop buffering, resume from the log once drained.
      this.#cut = true;
      this.#sub?.close();
      this.#sub = null;
    }
    if (!this.#draining) void this.#drain(ch);
  }

  /** Publishes the buffer in batches, each confirmed before the next (which bounds what is in flight). */
  async #drain(ch: ConfirmChannel): Promise<void> {
    if (this.#draining) return;
    this.#draining = true;
    try {
      while (this.#ch === ch && this.#buffer.length > 0) {
        const batch = this.#buffer.splice(0, BATCH).filter((m) => m.seq >= this.next);
        const confirms: Promise<void>[] = [];
        for (const m of batch) {
          const { content, options } = encodeTopicMessage(m);
          confirms.push(publishConfirmed(ch, BROADCAST_EXCHANGE, m.channel, content, options));
        }
        if (confirms.length === 0) continue;
        await Promise.all(confirms);
        this.next = batch.at(-1)!.seq + 1;
        this.deps.stats.republished += batch.length;
      }
      if (this.#ch === ch && this.#cut) {
        this.#cut = false;
        await this.#subscribe();
      }
    } catch (err) {
      if (this.#ch === ch) this.deps.onFailure(`re-publishing ${this.channel} failed: ${describeError(err)}`);
    } finally {
      this.#draining = false;
    }
    if (this.#ch === ch && this.#buffer.length > 0) void this.#drain(ch);
  }
}
