import type { Clock } from "../core/clock.ts";
import { ConflictError } from "../core/errors.ts";
import { keys } from "./keys.ts";

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
  readonly createdAt: string;
}

/** What a caller gives to create a channel. */
export type NewChannel = Omit<ChannelConfig, "createdAt">;

/** The channels shipped out of the box. */
export const DEFAULT_CHANNELS: readonly NewChannel[] = [{
  name: "blog_queuing",
  ordering: "device",
  anonymousPublish: false,
  anonymousSubscribe: false,
  subscribers: [],
  defaultScript: "blog/queues/processor",
}];

/** Channel settings in KV, cached in memory (they change rarely). */
export class ChannelRegistry {
  readonly #cache = new Map<string, ChannelConfig>();

  constructor(private readonly kv: Deno.Kv, private readonly clock: Clock) {}

  /** Creates a channel; fails with `ConflictError` if the name is taken. */
  async create(channel: NewChannel): Promise<ChannelConfig> {
    const config = { ...channel, createdAt: new Date(this.clock.now()).toISOString() };
    const res = await this.kv.atomic()
      .check({ key: keys.channel(channel.name), versionstamp: null })
      .set(keys.channel(channel.name), config)
      .commit();
    if (!res.ok) throw new ConflictError(`Channel "${channel.name}" already exists`);
    this.#cache.set(config.name, config);
    return config;
  }

  /** Creates the default channels that do not exist yet. */
  async ensureDefaults(): Promise<void> {
    for (const c of DEFAULT_CHANNELS) {
      if (!(await this.get(c.name))) await this.create(c).catch(() => {});
    }
  }

  /** A channel's settings, or null if there is no such channel. */
  async get(name: string): Promise<ChannelConfig | null> {
    const cached = this.#cache.get(name);
    if (cached) return cached;
    const entry = await this.kv.get<ChannelConfig>(keys.channel(name));
    if (entry.value) this.#cache.set(name, entry.value);
    return entry.value;
  }

  /** Every channel. */
  async list(): Promise<ChannelConfig[]> {
    const out: ChannelConfig[] = [];
    for await (const e of this.kv.list<ChannelConfig>({ prefix: keys.channels() })) out.push(e.value);
    return out;
  }
}
