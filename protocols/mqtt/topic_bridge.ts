import { describeError } from "../../core/errors.ts";
import type { Logger } from "../../core/log.ts";
import type { Subscription, TopicHub, TopicMessage } from "../../engine/topic_hub.ts";

interface Feed {
  readonly since: number;
  readonly subscription: Promise<Subscription | null>;
}

/** How long a fresh feed is kept even if no subscriber shows up in a sweep (its SUBACK may be pending). */
const GRACE_MS = 5_000;

/**
 * Follows the topics that MQTT clients subscribe to and hands each new message to `publish`,
 * which re-publishes it on `<channel>/messages` (never with a token). One topic-hub subscription
 * per channel, kept while some MQTT client still subscribes to it.
 */
export class TopicBridge {
  readonly #feeds = new Map<string, Feed>();

  constructor(
    private readonly topics: TopicHub,
    private readonly publish: (m: TopicMessage) => void,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  /** Starts following a channel (no-op when already followed); resolves once live. */
  async follow(channel: string): Promise<void> {
    let feed = this.#feeds.get(channel);
    if (!feed) {
      const subscription = this.topics.subscribe(channel, undefined, { deliver: this.publish }).catch((err) => {
        this.log.warn(`MQTT topic bridge cannot follow ${channel}: ${describeError(err)}`);
        this.#feeds.delete(channel);
        return null;
      });
      feed = { since: this.now(), subscription };
      this.#feeds.set(channel, feed);
    }
    await feed.subscription;
  }

  /** Stops following every channel not in `live` (old enough to not be a subscription in progress). */
  keepOnly(live: ReadonlySet<string>): void {
    const now = this.now();
    for (const [channel, feed] of this.#feeds) {
      if (live.has(channel) || now - feed.since < GRACE_MS) continue;
      this.#feeds.delete(channel);
      feed.subscription.then((s) => s?.close());
    }
  }

  /** Channels followed now. */
  channels(): string[] {
    return [...this.#feeds.keys()];
  }

  close(): void {
    for (const feed of this.#feeds.values()) feed.subscription.then((s) => s?.close());
    this.#feeds.clear();
  }
}
