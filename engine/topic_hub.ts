import { describeError } from "../core/errors.ts";
import type { Logger } from "../core/log.ts";
import { topicStream } from "../core/streams.ts";
import type { MessagePublishedData } from "../core/tasks.ts";
import { trueHead } from "../store/heads.ts";
import { keys } from "../store/keys.ts";
import { readEvents } from "../store/kv_event_store.ts";

/** A message of a topic, as subscribers receive it. */
export interface TopicMessage {
  readonly channel: string;
  readonly seq: number;
  readonly message: unknown;
  readonly sender: string;
  /** Commit time, ms. */
  readonly at: number;
}

/** A live subscription; `close()` stops delivery. */
export interface Subscription {
  close(): void;
}

interface Sub {
  next: number;
  catchingUp: boolean;
  closed: boolean;
  readonly deliver: (m: TopicMessage) => void;
  readonly room?: () => boolean;
  readonly subscription: Subscription;
}

/** Messages the live feed reads at a time. */
const PAGE = 500;
/**
 * Messages a catch-up reads at a time: what a subscriber waiting for room does not hold (up to
 * 100 × 48 KiB while they are handed over; none while it waits).
 */
const CATCH_UP_PAGE = 100;

/**
 * Follows topics for subscribers: one `kv.watch` on a channel's head key is the doorbell, and the
 * feed reads the range it has not seen. A subscriber with `from` first catches up from the log,
 * then joins the live feed without a gap or a repeat.
 */
/**
 * Rings when a stream's head moves. One process: the committer tells at once. Several instances:
 * `kv.watch` on the head key (it skips values: a doorbell, not a tail).
 */
export type Doorbell = (stream: string, ring: (head: number) => void) => () => void;

/** The doorbell of several instances sharing a KV: `kv.watch` on the head key. */
export function watchDoorbell(kv: Deno.Kv, log: Logger): Doorbell {
  return (stream, ring) => {
    const watch = kv.watch([keys.head(stream)]);
    let stopped = false;
    (async () => {
      try {
        for await (const [entry] of watch) {
          if (stopped) break;
          if (typeof entry?.value === "number") ring(entry.value);
        }
      } catch (err) {
        if (!stopped) log.warn(`Watch on ${stream} ended: ${describeError(err)}`);
      }
    })();
    return () => {
      stopped = true;
      watch.cancel().catch(() => {});
    };
  };
}

export class TopicHub {
  readonly #feeds = new Map<string, Feed>();

  /**
   * `roomWaitMs` (`SLOW_CLIENT_TIMEOUT`): how long a subscriber may go without room before it is
   * given its messages anyway, and its own limit cuts off a client that reads nothing.
   */
  constructor(
    private readonly kv: Deno.Kv,
    private readonly log: Logger,
    private readonly doorbell: Doorbell,
    private readonly roomWaitMs = 60_000,
  ) {}

  /**
   * Delivers the channel's messages in order: from seq `from` on, or, without `from`, only those
   * published from now on. `deliver` must not block (adapters buffer and cut off slow clients).
   */
  /**
   * Delivers the channel's messages from `from` (undefined: only new ones) to `deliver`. `room`: the
   * subscriber's send buffer has room; a catch-up from the log waits for it before each message, so
   * a backlog larger than the buffer reaches a client that reads it, at the pace it reads.
   */
  async subscribe(
    channel: string,
    from: number | undefined,
    deliver: (m: TopicMessage) => void,
    room?: () => boolean,
  ): Promise<Subscription> {
    let feed = this.#feeds.get(channel);
    if (!feed) {
      const created: Feed = new Feed(
        this.kv,
        channel,
        this.log,
        this.doorbell,
        this.roomWaitMs,
        () => this.#feeds.get(channel) === created && this.#feeds.delete(channel),
      );
      this.#feeds.set(channel, feed = created);
    }
    return await feed.add(from, deliver, room);
  }

  /** The seq of a channel's last message (0 when empty). */
  head(channel: string): Promise<number> {
    return trueHead(this.kv, topicStream(channel));
  }

  /** Number of live subscriptions (for metrics). */
  subscriberCount(): number {
    let n = 0;
    for (const f of this.#feeds.values()) n += f.size;
    return n;
  }

  close(): void {
    for (const f of [...this.#feeds.values()]) f.stop();
  }
}

class Feed {
  readonly #subs = new Set<Sub>();
  readonly #stream: string;
  #head = 0;
  #ready: Promise<void>;
  #unwatch: (() => void) | null = null;
  #pulling = false;
  #again = false;
  #stopped = false;

  constructor(
    private readonly kv: Deno.Kv,
    private readonly channel: string,
    private readonly log: Logger,
    private readonly doorbell: Doorbell,
    private readonly roomWaitMs: number,
    private readonly onEmpty: () => void,
  ) {
    this.#stream = topicStream(channel);
    this.#ready = this.#start();
  }

  get size(): number {
    return this.#subs.size;
  }

  async add(from: number | undefined, deliver: (m: TopicMessage) => void, room?: () => boolean): Promise<Subscription> {
    try {
      await this.#ready;
    } catch (err) {
      this.stop(); // a feed that could not start is dropped: the next subscription starts a new one
      throw err;
    }
    const subscription = {
      close: () => {
        sub.closed = true;
        this.#subs.delete(sub);
        if (this.#subs.size === 0) this.stop();
      },
    };
    const sub: Sub = {
      next: from === undefined ? this.#head + 1 : Math.max(1, from),
      catchingUp: false,
      closed: false,
      deliver,
      room,
      subscription,
    };
    this.#subs.add(sub);
    if (sub.next <= this.#head) this.#fallBehind(sub, subscription);
    return subscription;
  }

  /** The subscriber is served from the log, at the pace it makes room, until it reaches the live feed. */
  #fallBehind(sub: Sub, subscription: Subscription): void {
    sub.catchingUp = true;
    this.#catchUp(sub).catch((err) => {
      this.log.warn(`Catch-up on ${this.channel} failed: ${describeError(err)}`);
      subscription.close();
    });
  }

  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#unwatch?.();
    this.onEmpty();
  }

  async #start(): Promise<void> {
    this.#unwatch = this.doorbell(this.#stream, (head) => {
      if (head > this.#head) this.#pull();
    });
    this.#head = await trueHead(this.kv, this.#stream);
    this.#pull(); // what landed between the doorbell's start and the head read
  }

  /** Reads what came after the last dispatched seq and hands it to the live subscribers. */
  #pull(): void {
    if (this.#pulling) {
      this.#again = true;
      return;
    }
    this.#pulling = true;
    (async () => {
      try {
        do {
          this.#again = false;
          for (;;) {
            const page = await readEvents<MessagePublishedData>(this.kv, this.#stream, this.#head + 1, PAGE);
            for (const e of page) {
              const m = toMessage(this.channel, e);
              this.#head = e.seq;
              for (const sub of this.#subs) {
                if (sub.catchingUp || sub.closed || sub.next > e.seq) continue;
                // A burst faster than the client takes it (or than the socket writes within this loop):
                // it goes on from the log rather than past its send buffer.
                if (sub.room && !sub.room()) this.#fallBehind(sub, sub.subscription);
                else sub.next = e.seq + 1, sub.deliver(m);
              }
            }
            if (page.length < PAGE) break;
          }
        } while (this.#again && !this.#stopped);
      } catch (err) {
        this.log.warn(`Reading ${this.channel} failed: ${describeError(err)}`);
      } finally {
        this.#pulling = false;
      }
    })();
  }

  /**
   * Replays the log for one subscriber up to the feed's head, then hands it to the live feed. It
   * waits for room before each page; after a wait of `roomWaitMs` in vain, it hands everything over
   * and the subscriber's own limit cuts off a client that reads nothing.
   */
  async #catchUp(sub: Sub): Promise<void> {
    let patient = true;
    while (!sub.closed) {
      const target = this.#head;
      while (sub.next <= target && !sub.closed) {
        if (patient && sub.room && !sub.room()) patient = await roomFor(sub, this.roomWaitMs);
        if (sub.closed) return;
        if (!(await this.#replayPage(sub, target, patient))) sub.next = target + 1; // expired: nothing to replay
      }
      if (this.#head <= target || sub.next > this.#head) {
        sub.catchingUp = false; // from here the live feed delivers, synchronously after this point
        return;
      }
    }
  }

  /**
   * Reads a page of the log from the subscriber's next seq and hands it over while the subscriber
   * has room (all of it when not `patient`); false when the log has nothing there. The page is let
   * go before the next wait for room.
   */
  async #replayPage(sub: Sub, target: number, patient: boolean): Promise<boolean> {
    const page = await readEvents<MessagePublishedData>(
      this.kv,
      this.#stream,
      sub.next,
      Math.min(CATCH_UP_PAGE, target - sub.next + 1),
    );
    if (page.length === 0) return false;
    for (const e of page) {
      if (sub.closed || (patient && sub.room && !sub.room())) break;
      sub.next = e.seq + 1;
      sub.deliver(toMessage(this.channel, e));
    }
    return true;
  }
}

/** Waits until the subscriber has room or closed (true), or `waitMs` passed (false). */
async function roomFor(sub: Sub, waitMs: number): Promise<boolean> {
  const until = Date.now() + waitMs;
  // Looked at often at first (a socket writes within a few ms), then every 100 ms: a thousand clients
  // that read nothing do not keep the process busy.
  for (let delay = 5; !sub.closed && !sub.room!(); delay = Math.min(delay * 2, 100)) {
    if (Date.now() >= until) return false;
    await new Promise((r) => setTimeout(r, delay));
  }
  return true;
}

function toMessage(
  channel: string,
  e: { seq: number; data: MessagePublishedData; at: number },
): TopicMessage {
  return { channel, seq: e.seq, message: e.data.message, sender: e.data.sender, at: e.at };
}
