import { describeError } from "../core/errors.ts";
import type { Logger } from "../core/log.ts";
import { isSystemChannel } from "../core/names.ts";
import type { Subscription, TopicHub, TopicMessage } from "../engine/topic_hub.ts";
import type { ChannelRegistry } from "../store/channel_registry.ts";
import { RepublishCursors } from "../store/republish_cursors.ts";
import type { Sluice } from "../sluice.ts";

/**
 * Sends one topic message over one broker connection; resolves once the broker has it (a publisher
 * confirm, a PUBACK), rejects when it will not (a nack, the connection closed).
 */
export type Publish = (m: TopicMessage) => Promise<void>;

/** Where re-publishing stands per channel, kept across restarts (see `RepublishCursors`). */
export interface RepublishCursorStore {
  load(channel: string): Promise<number | undefined>;
  save(channel: string, seq: number): Promise<void>;
  /** Whether a start before kept where every channel it found starts (`markStarted`). */
  started(): Promise<boolean>;
  markStarted(): Promise<void>;
}

export interface RepublisherDeps {
  readonly topics: TopicHub;
  readonly channels: ChannelRegistry;
  readonly log: Logger;
  /** The protocol, for log lines ("AMQP", "MQTT"). */
  readonly protocol: string;
  /** How often the channel list is read to follow channels created since (ms). */
  readonly pollMs: number;
  /** A publish failed: get a new connection (re-publishing resumes after the last confirmed seq). */
  readonly onFailure: (reason: string) => void;
  /** Told of each batch the broker confirmed. */
  readonly onPublished?: (count: number) => void;
  /** The last confirmed message of each channel, in KV; without it re-publishing starts at the head. */
  readonly cursors?: RepublishCursorStore;
}

/** A Republisher for one protocol of a running Sluice, its cursors kept in KV under the protocol's name. */
export function republisherOf(
  sluice: Pick<Sluice, "topics" | "channels" | "log" | "kv" | "committer">,
  protocol: "AMQP" | "MQTT",
  options: Pick<RepublisherDeps, "pollMs" | "onFailure" | "onPublished">,
): Republisher {
  return new Republisher({
    topics: sluice.topics,
    channels: sluice.channels,
    log: sluice.log,
    protocol,
    cursors: new RepublishCursors(sluice.kv, sluice.committer, protocol.toLowerCase()),
    ...options,
  });
}

/** Messages a channel may buffer before its feed is cut and later resumed from the log. */
const MAX_BUFFERED = 10_000;
const BATCH = 256;

/**
 * Re-publishes the topic messages of every channel (not Sluice's own `_` channels) to a broker, in
 * confirmed batches. Each channel resumes after the last message the broker confirmed (the
 * `cursors`, kept in KV, so across restarts too); a channel never re-published before is followed
 * from its next message when it exists at re-publishing's first `init`, from its first when created
 * later (found by reading the channel list every `pollMs`, or at a later start). So messages
 * published while the broker was away, or Sluice was stopped before the broker confirmed them, go
 * out once both are back.
 */
export class Republisher {
  readonly #followers = new Map<string, Follower>();
  #publish: Publish | null = null;
  #timer: ReturnType<typeof setInterval> | null = null;

  constructor(private readonly deps: RepublisherDeps) {}

  /** Notes every channel and where its next message will be; call once before `attach`. */
  async init(): Promise<void> {
    const cursors = this.deps.cursors;
    // Once a start kept where every channel it found starts, a channel without a cursor was created
    // since (and not read from the channel list before Sluice stopped): everything it has is new.
    const known = await cursors?.started() ?? false;
    let behind = 0, channels = 0;
    const noted: Promise<boolean>[] = [];
    for (const c of await this.deps.channels.list()) {
      if (isSystemChannel(c.name)) continue;
      const head = await this.deps.topics.head(c.name);
      const confirmed = await cursors?.load(c.name);
      const from = confirmed === undefined ? (known ? 0 : head) : Math.min(confirmed, head);
      const f = this.#add(c.name, from + 1);
      if (confirmed === undefined) noted.push(f.note(from)); // from here, after a restart too
      if (from < head) behind += head - from, channels++;
    }
    const kept = (await Promise.all(noted)).every(Boolean);
    if (cursors && !known && kept) {
      await cursors.markStarted().catch((err) =>
        this.deps.log.warn(`${this.deps.protocol}: keeping that re-publishing started failed: ${describeError(err)}`)
      );
    }
    if (behind > 0) {
      this.deps.log.info(
        `${this.deps.protocol}: re-publishing resumes with ${behind} message(s) of ${channels} channel(s) ` +
          `the broker has not confirmed yet`,
      );
    }
    this.#timer = setInterval(() => this.#discover(), this.deps.pollMs);
    Deno.unrefTimer(this.#timer);
  }

  /** Starts re-publishing through a fresh connection's `publish`. */
  async attach(publish: Publish): Promise<void> {
    this.#publish = publish;
    await this.#discover();
    await Promise.all([...this.#followers.values()].map((f) => f.attach(publish)));
  }

  /** The connection is gone: stop; `attach` resumes after the last confirmed message. */
  detach(): void {
    this.#publish = null;
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
        // Created after the start, everything it has is new (kept as its start); or followed before.
        const confirmed = await this.deps.cursors?.load(c.name);
        if (this.#followers.has(c.name)) continue; // another round added it meanwhile
        const f = this.#add(c.name, (confirmed ?? 0) + 1);
        if (confirmed === undefined) void f.note(0);
        if (this.#publish) await f.attach(this.#publish);
      }
    } catch (err) {
      this.deps.log.warn(`${this.deps.protocol}: reading the channel list failed: ${describeError(err)}`);
    }
  }

  #add(channel: string, next: number): Follower {
    const f = new Follower(channel, next, this.deps);
    this.#followers.set(channel, f);
    return f;
  }
}

/** One channel's feed to the broker: buffers what the hub delivers and publishes it in confirmed batches. */
class Follower {
  #sub: Subscription | null = null;
  #publish: Publish | null = null;
  #buffer: TopicMessage[] = [];
  #draining = false;
  #cut = false;
  /** The cursor as KV has it, and whether a write of it is under way. */
  #noted: number;
  #noting = false;
  #noteFailed = false;

  constructor(private readonly channel: string, private next: number, private readonly deps: RepublisherDeps) {
    this.#noted = next - 1;
  }

  /**
   * Writes the last confirmed seq to KV, one write at a time (the latest wins). A failed write is
   * tried with the next confirmed batch; until one lands, a restart sends those messages again.
   * Resolves whether this write landed (false when none was made).
   */
  note(seq: number, force = true): Promise<boolean> {
    const cursors = this.deps.cursors;
    if (!cursors || this.#noting || (seq <= this.#noted && !force)) return Promise.resolve(false);
    this.#noting = true;
    return cursors.save(this.channel, seq).then(
      () => {
        this.#noted = Math.max(this.#noted, seq);
        this.#noting = this.#noteFailed = false;
        void this.note(this.next - 1, false);
        return true;
      },
      (err) => {
        this.#noting = false;
        if (this.#noteFailed) return false; // said once until a write lands
        this.#noteFailed = true;
        this.deps.log.warn(
          `${this.deps.protocol}: keeping where re-publishing ${this.channel} stands failed ` +
            `(a restart would send its last messages again): ${describeError(err)}`,
        );
        return false;
      },
    );
  }

  async attach(publish: Publish): Promise<void> {
    if (this.#publish === publish) return;
    this.detach();
    this.#publish = publish;
    await this.#subscribe();
  }

  detach(): void {
    this.#sub?.close();
    this.#sub = null;
    this.#publish = null;
    this.#buffer = [];
    this.#cut = false;
  }

  async #subscribe(): Promise<void> {
    const publish = this.#publish;
    const sub = await this.deps.topics.subscribe(this.channel, this.next, {
      deliver: (m) => this.#deliver(publish, m),
      // The channel's log could not be read: as when the buffer is cut, what is buffered goes out, then the
      // channel is followed again from the first message not sent (the hub's retries pace the attempts).
      ended: (reason) => {
        if (publish === null || this.#publish !== publish) return;
        this.#sub = null;
        this.#cut = true;
        this.deps.log.warn(`${this.deps.protocol}: following ${this.channel} again: ${reason}`);
        if (!this.#draining) void this.#drain(publish);
      },
    });
    if (this.#publish !== publish) sub.close();
    else this.#sub = sub;
  }

  #deliver(publish: Publish | null, m: TopicMessage): void {
    if (publish === null || publish !== this.#publish || this.#cut) return;
    this.#buffer.push(m);
    if (this.#buffer.length >= MAX_BUFFERED) {
      // The broker is slower than the channel: stop buffering, resume from the log once drained.
      this.#cut = true;
      this.#sub?.close();
      this.#sub = null;
    }
    if (!this.#draining) void this.#drain(publish);
  }

  /** Publishes the buffer in batches, each confirmed before the next (which bounds what is in flight). */
  async #drain(publish: Publish): Promise<void> {
    if (this.#draining) return;
    this.#draining = true;
    try {
      while (this.#publish === publish && this.#buffer.length > 0) {
        const batch = this.#buffer.splice(0, BATCH).filter((m) => m.seq >= this.next);
        if (batch.length === 0) continue;
        await Promise.all(batch.map(publish));
        this.next = batch.at(-1)!.seq + 1;
        void this.note(this.next - 1, false);
        this.deps.onPublished?.(batch.length);
      }
      if (this.#publish === publish && this.#cut) {
        this.#cut = false;
        await this.#subscribe();
      }
    } catch (err) {
      if (this.#publish === publish) this.deps.onFailure(`re-publishing ${this.channel} failed: ${describeError(err)}`);
    } finally {
      this.#draining = false;
    }
    // A new connection's messages may have arrived while an old one's batch was still out.
    if (this.#publish !== null && this.#buffer.length > 0) void this.#drain(this.#publish);
  }
}
