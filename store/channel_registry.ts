import type { Clock } from "../core/clock.ts";
import { ConcurrencyError, ConflictError } from "../core/errors.ts";
import { onKeyChange } from "./key_watch.ts";
import { keys } from "./keys.ts";
import { kvPage } from "./kv_page.ts";

/** How a channel's tasks are partitioned: per device, one stream for the channel, or spread. */
export type Ordering = "device" | "channel" | "none";

/** A channel's settings. */
export interface ChannelConfig {
  readonly name: string;
  readonly ordering: Ordering;
  readonly anonymousPublish: boolean;
  readonly anonymousSubscribe: boolean;
  /** Scripts run for every message published on the topic. */
  readonly subscribers: readonly string[];
  /** Script queued for an invoke body that names none (a bare CSV string, say). */
  readonly defaultScript?: string;
  /** While true, none of the channel's scripts run (its tasks and subscriber scripts); messages are still taken. */
  readonly paused?: boolean;
  readonly createdAt: string;
}

/** What a caller gives to create a channel. */
export type NewChannel = Omit<ChannelConfig, "createdAt">;

/** Where subscriber scripts start: their cursor keys set to a seq, their retry keys deleted (no value). */
export type SubscriberStarts = readonly { readonly key: Deno.KvKey; readonly value?: number }[];

/** The channels shipped out of the box. */
export const DEFAULT_CHANNELS: readonly NewChannel[] = [{
  name: "blog_queuing",
  ordering: "device",
  anonymousPublish: false,
  anonymousSubscribe: false,
  subscribers: [],
  defaultScript: "blog/queues/processor",
}];

/**
 * Channel settings in KV, cached in memory (they change rarely). Every change bumps a revision key,
 * which other instances sharing the KV watch to drop their caches.
 */
export class ChannelRegistry {
  readonly #cache = new Map<string, ChannelConfig>();
  /** Bumped whenever the cache is dropped: a read begun before then is not cached. */
  #generation = 0;
  readonly #listeners = new Set<(name: string | null) => void>();

  constructor(private readonly kv: Deno.Kv, private readonly clock: Clock) {}

  /**
   * Creates a channel, its subscriber scripts starting at `starts` (a name used before keeps its
   * topic's seqs); fails with `ConflictError` if the name is taken.
   */
  async create(channel: NewChannel, starts: SubscriberStarts = []): Promise<ChannelConfig> {
    const config = { ...channel, createdAt: new Date(this.clock.now()).toISOString() };
    const op = this.kv.atomic()
      .check({ key: keys.channel(channel.name), versionstamp: null })
      .set(keys.channel(channel.name), config)
      .delete(keys.channelGone(channel.name))
      .sum(keys.channelsRevision(), 1n);
    for (const s of starts) s.value === undefined ? op.delete(s.key) : op.set(s.key, s.value);
    if (!(await op.commit()).ok) throw new ConflictError(`Channel "${channel.name}" already exists`);
    this.#generation++; // a read under way when it landed may hold the old settings
    this.#cache.set(config.name, config);
    this.#changed(config.name);
    return config;
  }

  /**
   * Changes a channel's settings: `plan` gets the current ones and gives the new ones, with where
   * new subscriber scripts start; null when there is no such channel. A concurrent change of the
   * same channel makes it a `ConflictError`.
   */
  async update(
    name: string,
    plan: (current: ChannelConfig) => Promise<{ config: ChannelConfig; starts: SubscriberStarts }>,
  ): Promise<ChannelConfig | null> {
    const entry = await this.kv.get<ChannelConfig>(keys.channel(name));
    if (!entry.value) return null;
    const { config, starts } = await plan(entry.value);
    const op = this.kv.atomic()
      .check(entry)
      .set(keys.channel(name), config)
      .sum(keys.channelsRevision(), 1n);
    for (const s of starts) s.value === undefined ? op.delete(s.key) : op.set(s.key, s.value);
    if (!(await op.commit()).ok) {
      if (!(await this.kv.get(keys.channel(name))).value) return null; // deleted meanwhile
      throw new ConcurrencyError(`Channel "${name}" changed meanwhile; try again`);
    }
    this.#generation++;
    this.#cache.set(name, config);
    this.#changed(name);
    return config;
  }

  /** The ordering a channel had when it was deleted (null: never deleted, or created again since). */
  async goneOrdering(name: string): Promise<ChannelConfig["ordering"] | null> {
    return (await this.kv.get<ChannelConfig["ordering"]>(keys.channelGone(name))).value;
  }

  /**
   * Deletes a channel's settings (its logs stay until they expire), keeping its ordering for a channel created again
   * under the name; false when there was none.
   */
  async delete(name: string): Promise<boolean> {
    const entry = await this.kv.get<ChannelConfig>(keys.channel(name));
    if (!entry.value) return false;
    const res = await this.kv.atomic()
      .check(entry)
      .delete(keys.channel(name))
      .set(keys.channelGone(name), entry.value.ordering)
      .sum(keys.channelsRevision(), 1n)
      .commit();
    if (!res.ok) {
      if (!(await this.kv.get(keys.channel(name))).value) return false; // another delete went first
      throw new ConcurrencyError(`Channel "${name}" changed meanwhile; try again`);
    }
    this.#generation++;
    this.#cache.delete(name);
    this.#changed(name);
    return true;
  }

  /**
   * Creates the default channels on a KV's first start only: a default channel deleted later stays
   * deleted.
   */
  async ensureDefaults(): Promise<void> {
    if ((await this.kv.get(keys.channelDefaults())).value) return;
    for (const c of DEFAULT_CHANNELS) {
      if (!(await this.get(c.name))) await this.create(c).catch(() => {});
    }
    await this.kv.set(keys.channelDefaults(), true);
  }

  /**
   * Calls `listener` after every change of a channel: with its name when made here, with null when
   * another instance sharing the KV made one (any channel may have changed).
   */
  onChange(listener: (name: string | null) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #changed(name: string | null): void {
    for (const l of this.#listeners) {
      try {
        l(name);
      } catch { /* a listener's failure is its own */ }
    }
  }

  /** Drops the cache whenever another instance sharing this KV changes a channel. */
  watchChanges(signal: AbortSignal, log?: (line: string) => void): void {
    onKeyChange(this.kv, keys.channelsRevision(), signal, () => {
      this.#cache.clear();
      this.#generation++;
      this.#changed(null);
    }, log);
  }

  /** A channel's settings, or null if there is no such channel. */
  async get(name: string): Promise<ChannelConfig | null> {
    const cached = this.#cache.get(name);
    if (cached) return cached;
    const generation = this.#generation;
    const entry = await this.kv.get<ChannelConfig>(keys.channel(name));
    if (entry.value && generation === this.#generation) this.#cache.set(name, entry.value);
    return entry.value;
  }

  /** Channels by name, at most `limit`, after the name `after`; `next` pages on (null at the end). */
  async page(limit: number, after?: string): Promise<{ channels: ChannelConfig[]; next: string | null }> {
    const page = await kvPage<ChannelConfig>(this.kv, keys.channels(), limit, after);
    return { channels: page.values, next: page.more ? page.values.at(-1)!.name : null };
  }

  /** Every channel. */
  async list(): Promise<ChannelConfig[]> {
    const out: ChannelConfig[] = [];
    for await (const e of this.kv.list<ChannelConfig>({ prefix: keys.channels() })) out.push(e.value);
    return out;
  }
}
