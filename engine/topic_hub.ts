import { describeError, ValidationError } from "../core/errors.ts";
import { sleep } from "../core/sleep.ts";
import type { Logger } from "../core/log.ts";
import { topicStream } from "../core/streams.ts";
import type { MessagePublishedData } from "../core/tasks.ts";
import { trueHead } from "../store/heads.ts";
import { keys } from "../store/keys.ts";
import { readEvents } from "../store/kv_event_store.ts";
import { RoomTicker } from "./room_ticker.ts";

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

/** What a subscriber gives: where its messages go, whether it has room for more, and how it hears its end. */
export interface Subscriber {
  /** Must not block (adapters buffer, and cut off a client that reads nothing). */
  readonly deliver: (m: TopicMessage) => void;
  /** Its send buffer has room: without it, messages wait in the log until it has (see `TopicHub`). */
  readonly room?: () => boolean;
  /** Sluice ended the subscription (the log could not be read): the client should subscribe again. */
  readonly ended?: (reason: string) => void;
}

interface Sub extends Subscriber {
  next: number;
  catchingUp: boolean;
  closed: boolean;
  /** Messages its catch-up reads at a time: what it took of the last page, doubled (a slow one reads few). */
  pageSize: number;
  readonly subscription: Subscription;
}

/** Messages the live feed reads at a time, and the most it keeps of its latest for subscribers that fell behind. */
const PAGE = 500;
/**
 * Messages a catch-up reads from the log at a time: what a subscriber waiting for room does not
 * hold (up to 100 × 48 KiB while they are handed over; none while it waits).
 */
const CATCH_UP_PAGE = 100;
/** A catch-up's first page: many subscribers that start at once read little until they show how fast they read. */
const FIRST_CATCH_UP_PAGE = 8;
/** Waits before a failed read of the log is tried again; after the last, the subscription ends. */
const READ_RETRIES_MS = [100, 500, 2000];

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

/** What every channel's feed shares. */
interface FeedContext {
  readonly kv: Deno.Kv;
  readonly log: Logger;
  readonly doorbell: Doorbell;
  /** `SLOW_CLIENT_TIMEOUT`. */
  readonly roomWaitMs: number;
  readonly ticker: RoomTicker;
}

/**
 * Follows topics for subscribers: a doorbell rings when a channel's head moves, and the channel's
 * feed reads the range it has not seen and hands it to its live subscribers. A subscriber is kept
 * at most its buffer's room ahead: one with `from`, or a live one that a burst left without room,
 * is served from the log at the pace it makes room, then joins the live feed again without a gap
 * or a repeat. One that makes no room for `roomWaitMs` is handed its messages anyway, and its own
 * limit cuts off a client that reads nothing.
 */
export class TopicHub {
  readonly #feeds = new Map<string, Feed>();
  readonly #context: FeedContext;

  constructor(kv: Deno.Kv, log: Logger, doorbell: Doorbell, roomWaitMs = 60_000) {
    this.#context = { kv, log, doorbell, roomWaitMs, ticker: new RoomTicker() };
  }

  /** Delivers the channel's messages from `from` (undefined: only new ones) to the subscriber, in order. */
  async subscribe(channel: string, from: number | undefined, subscriber: Subscriber): Promise<Subscription> {
    for (;;) {
      let feed = this.#feeds.get(channel);
      if (!feed) {
        const created: Feed = new Feed(
          this.#context,
          channel,
          () => this.#feeds.get(channel) === created && this.#feeds.delete(channel),
        );
        this.#feeds.set(channel, feed = created);
      }
      // null: the feed stopped (its last subscriber left) while this one waited for it to start.
      const subscription = await feed.add(from, subscriber);
      if (subscription) return subscription;
    }
  }

  /** The seq of a channel's last message (0 when empty). */
  head(channel: string): Promise<number> {
    return trueHead(this.#context.kv, topicStream(channel));
  }

  /**
   * Refuses a start past the channel's next message: such a subscription would wait, silent, for
   * messages that are not there (a seq from another channel, or from before a restore).
   */
  async checkStart(channel: string, from: number | undefined): Promise<void> {
    if (from === undefined) return;
    const head = await this.head(channel);
    if (from > head + 1) {
      throw new ValidationError(
        `Message ${from} is not reached yet: channel "${channel}" has ${head} message(s), so a subscription starts ` +
          `at ${head + 1} at most`,
      );
    }
  }

  /** Number of live subscriptions (for metrics). */
  subscriberCount(): number {
    let n = 0;
    for (const f of this.#feeds.values()) n += f.size;
    return n;
  }

  close(): void {
    for (const f of [...this.#feeds.values()]) f.stop();
    this.#context.ticker.close();
  }
}

class Feed {
  readonly #subs = new Set<Sub>();
  readonly #stream: string;
  #head = 0;
  /**
   * The latest messages the feed read (at most PAGE), kept while a subscriber catches up: a burst's,
   * which those that fell behind in it need next.
   */
  #recent: TopicMessage[] = [];
  #ready: Promise<void>;
  #unwatch: (() => void) | null = null;
  #pulling = false;
  #again = false;
  #stopped = false;

  constructor(
    private readonly context: FeedContext,
    private readonly channel: string,
    private readonly onEmpty: () => void,
  ) {
    this.#stream = topicStream(channel);
    this.#ready = this.#start();
  }

  get size(): number {
    return this.#subs.size;
  }

  async add(from: number | undefined, subscriber: Subscriber): Promise<Subscription | null> {
    try {
      await this.#ready;
    } catch (err) {
      this.stop(); // a feed that could not start is dropped: the next subscription starts a new one
      throw err;
    }
    if (this.#stopped) return null;
    const subscription = {
      close: () => {
        sub.closed = true;
        this.#subs.delete(sub);
        if (this.#subs.size === 0) this.stop();
      },
    };
    const sub: Sub = {
      ...subscriber,
      next: from === undefined ? this.#head + 1 : Math.max(1, from),
      catchingUp: false,
      closed: false,
      pageSize: FIRST_CATCH_UP_PAGE,
      subscription,
    };
    this.#subs.add(sub);
    if (sub.next <= this.#head) this.#fallBehind(sub);
    return subscription;
  }

  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#unwatch?.();
    this.#recent = [];
    this.onEmpty();
  }

  async #start(): Promise<void> {
    let known = false; // until the head is read, a ring would read the log from its start
    this.#unwatch = this.context.doorbell(this.#stream, (head) => {
      if (known && head > this.#head) this.#pull();
    });
    this.#head = await trueHead(this.context.kv, this.#stream);
    known = true;
    this.#pull(); // what landed between the doorbell's start and the head read
  }

  /** The subscriber is served from the log, at the pace it makes room, until it reaches the live feed. */
  #fallBehind(sub: Sub): void {
    sub.catchingUp = true;
    this.#catchUp(sub).catch((err) => {
      if (sub.closed || this.#stopped) return;
      const why = describeError(err);
      this.context.log.warn(`A subscription to ${this.channel} ended: its catch-up failed: ${why}`);
      sub.subscription.close();
      sub.ended?.(`Cannot read the channel now (${why}); subscribe again`);
    });
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
            const page = await readEvents<MessagePublishedData>(this.context.kv, this.#stream, this.#head + 1, PAGE);
            const messages = page.map((e) => toMessage(this.channel, e));
            this.#remember(messages);
            for (const m of messages) {
              this.#head = m.seq;
              for (const sub of this.#subs) {
                if (sub.catchingUp || sub.closed || sub.next > m.seq) continue;
                // A burst faster than the client takes it (or than the socket writes within this loop):
                // it goes on from `#recent` and the log rather than past its send buffer.
                if (sub.room && !sub.room()) this.#fallBehind(sub);
                else sub.next = m.seq + 1, sub.deliver(m);
              }
            }
            if (page.length < PAGE) break;
          }
        } while (this.#again && !this.#stopped);
        this.#forgetCaughtUp();
      } catch (err) {
        this.context.log.warn(`Reading ${this.channel} failed: ${describeError(err)}`);
      } finally {
        this.#pulling = false;
      }
    })();
  }

  /** Adds what the feed read to `#recent` (what it holds already is not added again), at most PAGE. */
  #remember(messages: readonly TopicMessage[]): void {
    const last = this.#recent.at(-1)?.seq ?? 0;
    const fresh = messages.filter((m) => m.seq > last);
    if (fresh.length > 0) this.#recent = this.#recent.concat(fresh).slice(-PAGE);
  }

  /** Keeps of `#recent` only what a subscriber catching up still needs (nothing when none is). */
  #forgetCaughtUp(): void {
    let lowest = Infinity;
    for (const sub of this.#subs) if (sub.catchingUp) lowest = Math.min(lowest, sub.next);
    if (lowest === Infinity) this.#recent = [];
    else if (this.#recent.length > 0 && this.#recent[0]!.seq < lowest) {
      this.#recent = this.#recent.filter((m) => m.seq >= lowest);
    }
  }

  /**
   * Replays the log for one subscriber up to the feed's head, then hands it to the live feed. It
   * waits for room before each page; after a wait of `roomWaitMs` in vain, it hands everything over
   * and the subscriber's own limit cuts off a client that reads nothing.
   */
  async #catchUp(sub: Sub): Promise<void> {
    let patient = true;
    while (!sub.closed && !this.#stopped) {
      const target = this.#head;
      while (sub.next <= target && !sub.closed) {
        if (patient && sub.room && !sub.room()) {
          patient = await this.context.ticker.until(
            () => sub.closed || this.#stopped || sub.room!(),
            this.context.roomWaitMs,
          );
        }
        if (sub.closed || this.#stopped) return;
        const page = await this.#pageFrom(sub, target);
        if (page.length === 0) {
          sub.next = target + 1; // expired messages: nothing left to replay
          break;
        }
        let taken = 0;
        for (const m of page) {
          if (sub.closed || (patient && sub.room && !sub.room())) break;
          sub.next = m.seq + 1;
          sub.deliver(m);
          taken++;
        }
        sub.pageSize = Math.min(CATCH_UP_PAGE, Math.max(1, taken * 2)); // a page taken whole: twice as many next
      }
      if (this.#head <= target || sub.next > this.#head) {
        sub.catchingUp = false; // from here the live feed delivers, synchronously after this point
        this.#forgetCaughtUp();
        return;
      }
    }
  }

  /**
   * Up to the subscriber's page size of messages from its next on (at most to `target`): from
   * `#recent` when it holds them, else from the log (a failed read tried again after each of
   * READ_RETRIES_MS, while the subscription lasts).
   */
  async #pageFrom(sub: Sub, target: number): Promise<TopicMessage[]> {
    const next = sub.next;
    const limit = Math.min(sub.pageSize, target - next + 1);
    const recent = this.#recent;
    if (recent.length > 0 && recent[0]!.seq <= next && next <= recent.at(-1)!.seq) {
      const i = recent.findIndex((m) => m.seq >= next);
      return recent.slice(i, i + limit);
    }
    for (let attempt = 0;; attempt++) {
      try {
        const page = await readEvents<MessagePublishedData>(this.context.kv, this.#stream, next, limit);
        return page.map((e) => toMessage(this.channel, e));
      } catch (err) {
        if (attempt >= READ_RETRIES_MS.length) throw err;
        await sleep(READ_RETRIES_MS[attempt]!);
        if (sub.closed || this.#stopped) return [];
      }
    }
  }
}

function toMessage(
  channel: string,
  e: { seq: number; data: MessagePublishedData; at: number },
): TopicMessage {
  return { channel, seq: e.seq, message: e.data.message, sender: e.data.sender, at: e.at };
}
