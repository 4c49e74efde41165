import type { Clock } from "../core/clock.ts";
import { ConcurrencyError, LeaseLostError, PayloadTooLargeError, UnavailableError } from "../core/errors.ts";
import { asKvError } from "./kv_errors.ts";
import type { Waker } from "../core/waker.ts";
import { eventExpiry } from "./event_expiry.ts";
import { keys } from "./keys.ts";
import { chunked, KV_LIMITS } from "./kv_limits.ts";
import { traced } from "../core/tracing.ts";
import { headFrom } from "./heads.ts";
import { INBOX_LIMIT, inboxEntry, type InboxPack, moveOut, PACK_BYTES, recoverInbox } from "./inbox.ts";
import { deleteEmptiedPacks, InboxLedger, pack, type Unmoved } from "./inbox_ledger.ts";
import { takeOverFromOneWriter } from "./writer_takeover.ts";
import { keyId, keySize } from "../core/kv_size.ts";

/** An event before it is appended. */
export interface NewEvent {
  readonly type: string;
  readonly data: unknown;
}

/** An event as it landed, handed to append listeners (no read needed to see it). */
export interface AppendedEvent {
  readonly stream: string;
  readonly seq: number;
  readonly type: string;
  readonly data: unknown;
  readonly at: number;
}

/** Told after each commit: the new head of every stream appended to, and the events. */
export type AppendListener = (heads: ReadonlyMap<string, number>, events: readonly AppendedEvent[]) => void;

/** Where an appended event landed. */
export interface Position {
  readonly stream: string;
  readonly seq: number;
}

/**
 * A key to set; `derive` computes the value from the request's own positions. `withMove`: when
 * the request's append is acked from the inbox, the key is written with the append's move (in a
 * batch where a sender's keys sit side by side); until then `withMove()` answers reads of it.
 */
export type SetOp =
  | { readonly key: Deno.KvKey; readonly value: unknown; readonly expireIn?: number; readonly withMove?: boolean }
  | {
    readonly key: Deno.KvKey;
    readonly derive: (positions: readonly Position[]) => unknown;
    readonly expireIn?: number;
    readonly withMove?: boolean;
  };

/** One append; `expireIn` (ms) lets KV drop the event later (topic retention). */
export interface AppendOp {
  readonly stream: string;
  readonly event: NewEvent;
  readonly expireIn?: number;
  /** The event data's JSON size when the caller already knows it (saves measuring it again). */
  readonly size?: number;
}

/** One caller's writes: they land together, in one commit, or not at all. */
export interface WriteRequest {
  readonly appends?: readonly AppendOp[];
  readonly sets?: readonly SetOp[];
  readonly deletes?: readonly Deno.KvKey[];
  /** Extra checks, e.g. a partition lease; a failed check rejects only this request. */
  readonly checks?: readonly Deno.AtomicCheck[];
  /** Optimistic concurrency: the head each stream must be at before these appends. */
  readonly expectedHeads?: Readonly<Record<string, number>>;
  /** Task streams to wake once this lands. */
  readonly wake?: readonly string[];
  /** Someone waits for it (a device for its ack): it goes before background work. */
  readonly urgent?: boolean;
}

/** What a landed request gets back. */
export interface WriteResult {
  readonly positions: readonly Position[];
  /** Commit time (also each event's `at`). */
  readonly at: number;
}

/**
 * How a batch is guarded: `single` = one check on the writer epoch, sequence numbers assigned in
 * memory; `multi` = one head check per stream, for several writers on one KV.
 */
export type WriteMode = "single" | "multi";

/** Figures about each commit, for metrics. */
export interface CommitStats {
  readonly requests: number;
  readonly mutations: number;
  readonly ms: number;
}

/** How often `/healthz` may try a write while KV refuses them. */
const PROBE_MS = 2000;

export interface CommitterOptions {
  readonly kv: Deno.Kv;
  readonly mode: WriteMode;
  readonly clock: Clock;
  /** Versionstamp of the writer epoch this process claimed (single mode). */
  readonly epoch?: string;
  readonly waker?: Waker;
  readonly onCommit?: (stats: CommitStats) => void;
  /** Retries of a batch whose head checks failed (multi mode). */
  readonly maxRetries?: number;
  /**
   * Single mode: streams whose appends land in the inbox (acked from there) and reach their own
   * keys a few milliseconds later, many per commit. Call `recover()` before the first read.
   */
  readonly inbox?: (stream: string) => boolean;
  /** Events that may wait in the inbox; more go straight to their streams (tests make it small). */
  readonly inboxLimit?: number;
  /** How long a stream's events are kept when their append gives no `expireIn` (undefined: for good). */
  readonly retention?: (stream: string) => number | undefined;
  /** Told when KV starts and stops refusing writes (a full disk), and when another process took the KV over. */
  readonly log?: (line: string) => void;
  /** Why writes are refused before they reach KV (a disk nearly full, see `DiskRoom`), or null. */
  readonly shortage?: () => string | null;
  /** Told when a write lands after KV refused them (work waiting out the refusals may go on now). */
  readonly onWritesAgain?: () => void;
  /** Heads kept in memory before idle ones are forgotten, and how long idle that is (see `IDLE_HEADS`). */
  readonly idleHeads?: { readonly from: number; readonly afterMs: number };
}

interface Pending {
  readonly req: WriteRequest;
  /** Inbox entries this (internal) request moves to their streams. */
  readonly move?: readonly Unmoved[];
  readonly cost: Cost;
  readonly resolve: (r: WriteResult) => void;
  readonly reject: (e: unknown) => void;
}

interface Cost {
  readonly mutations: number;
  readonly bytes: number;
  readonly keyBytes: number;
  readonly checks: number;
  readonly streams: readonly string[];
  /** Estimated size of each append, in order. */
  readonly appendBytes: readonly number[];
  /** Keys this request checks, and keys it sets or deletes (ids), to keep conflicting requests apart. */
  readonly checkKeys: readonly string[];
  readonly writeKeys: readonly string[];
}

interface Head {
  seq: number;
  versionstamp: string | null;
  /** The seq its head key holds, and when that was written (single mode writes head keys lazily). */
  persisted: number;
  persistedAt: number;
  /** When it was last read from KV or moved by a commit: one idle long enough is forgotten. */
  usedAt: number;
}

/**
 * Heads kept in memory before idle ones are forgotten: a stream written once (a device that sent once) keeps no
 * memory for good. A head forgotten is read again (its key, then the events past it) when its stream is next used.
 */
const IDLE_HEADS = { from: 20_000, afterMs: 10 * 60_000 };

/** A batch's atomic operation, built, and what its commit's answer needs. */
interface Built {
  readonly op: Deno.AtomicOperation;
  readonly next: Map<string, number>;
  readonly results: Position[][];
  readonly appended: AppendedEvent[];
  readonly heard: Map<string, number>;
  readonly inboxed: Unmoved[];
  readonly mutations: number;
  readonly packs: Unmoved[][];
  readonly marker: number;
  readonly persisted: Set<string>;
  readonly woken: { stream: string; seq: number | undefined }[];
}

/** Background mutations a commit always has room for, even beside urgent ones. */
const BACKGROUND_MIN = 64;
/**
 * Background mutations a commit takes beside urgent ones, as a share of theirs: under a burst the
 * acks go first and the processing catches up afterwards in bigger, cheaper batches (measured
 * against 2: HTTP invoke 4.5k → 5.4k msgs/s, end to end 3.0k → 3.6k msgs/s).
 */
const BACKGROUND_SHARE = 0.5;
/**
 * The acks' share of a commit's mutations while the inbox's moves or background work wait too.
 * Without it a sustained overload of acks filled every commit and the processing all but stopped:
 * MQTT QoS 1 acked at 16.6k msgs/s for 30 s while 50 tasks/s were done (the rest after the load
 * stopped). With half: acked at 10.3k msgs/s while 8k tasks/s were done. Counted in mutations, an
 * ack bound for an inbox pack weighs more than its KV work; measured again on a faster machine, with
 * acks allowed the whole commit 19.8–21.9k msgs/s were acked while 2.7–3.7k tasks/s were done, with
 * half 10.8–13.6k and 8.7–11.1k (three pairs): the sum stays, the share decides the split.
 */
const ACK_SHARE = 0.5;

type Kind = "ack" | "move" | "background";

function kindOf(p: Pending): Kind {
  return !p.req.urgent ? "background" : p.move ? "move" : "ack";
}

/** How often, at most, one writer rewrites a stream's head key (its events are the truth). */
const HEAD_PERSIST_MS = 1000;

/**
 * Under load, how long an event waits in the inbox before it moves to its stream, unless
 * `INBOX_MOVE_GROUP` wait sooner. The processing does not wait for the move (lanes take the events
 * from memory), so the wait only groups the moves: a device's events of the last second land side
 * by side. Measured with the KV alone (Sluice's writes, 100 devices): moving every 300 events
 * 21k msgs/s ingest, 10k with processing; grouped by 3,000: 41k and 16k; by 15,000: 47k and 16k.
 */
const INBOX_MOVE_DELAY_MS = 1000;
export const INBOX_MOVE_GROUP = 16_384;
/** Light load: this few waiting and nothing else queued for the KV, they move at once. */
const INBOX_MOVE_AT_ONCE = 32;

/**
 * Group commit: gathers concurrent write requests into as few `kv.atomic()` commits as KV's
 * limits allow, assigns sequence numbers, and answers each caller after its commit landed.
 */
export class Committer {
  readonly #kv: Deno.Kv;
  readonly #mode: WriteMode;
  readonly #retention?: (stream: string) => number | undefined;
  readonly #clock: Clock;
  /** The latest commit time given out: commit times never go back, even when the clock does. */
  #lastAt = 0;
  readonly #epoch?: string;
  readonly #waker?: Waker;
  readonly #onCommit?: (stats: CommitStats) => void;
  readonly #maxRetries: number;
  readonly #heads = new Map<string, Head>();
  readonly #idleHeads: { readonly from: number; readonly afterMs: number };
  /** When idle heads may next be forgotten. */
  #scanAt = 0;
  #pending: Pending[] = [];
  #running: Promise<void> | null = null;
  #lost: LeaseLostError | null = null;
  /** Why KV refused the last commit (a full disk, an I/O error), until one lands again. */
  #refusing: string | null = null;
  #probedAt = 0;
  readonly #log?: (line: string) => void;
  readonly #shortage?: () => string | null;
  readonly #onWritesAgain?: () => void;
  readonly #listeners = new Set<AppendListener>();
  #headTimer: ReturnType<typeof setInterval> | undefined;
  readonly #inboxFor?: (stream: string) => boolean;
  readonly #limit: number;
  #recovery: Promise<number> | null = null;
  readonly #inbox = new InboxLedger();
  /** A commit of the move is queued or in flight (one at a time, so acks slot in between). */
  #moving = false;
  #moveTimer: ReturnType<typeof setTimeout> | undefined;
  /**
   * The answers (callers, append listeners) of commits that landed, given once the next commit is
   * on its way to KV, or once there is none: KV writes the next commit while the main thread
   * answers, instead of after it. Measured (HTTP invoke, one Sluice, `wrk -t2 -c64`, 8 s, four
   * alternating pairs): 7,423 / 9,805 / 9,236 / 7,383 msgs/s against 7,730 / 8,012 / 8,429 / 6,804.
   */
  #landed: (() => void)[] = [];

  constructor(options: CommitterOptions) {
    this.#kv = options.kv;
    this.#mode = options.mode;
    this.#retention = options.retention;
    this.#clock = options.clock;
    this.#epoch = options.epoch;
    this.#waker = options.waker;
    this.#onCommit = options.onCommit;
    this.#log = options.log;
    this.#shortage = options.shortage;
    this.#onWritesAgain = options.onWritesAgain;
    this.#maxRetries = options.maxRetries ?? 50;
    this.#idleHeads = options.idleHeads ?? IDLE_HEADS;
    if (this.#mode === "single" && this.#epoch === undefined) {
      throw new Error("Single-writer mode needs the claimed writer epoch");
    }
    if (this.#mode === "single") this.#inboxFor = options.inbox;
    this.#limit = options.inboxLimit ?? INBOX_LIMIT;
    // One writer knows every head: head keys are rewritten lazily, the stale ones once a second.
    if (this.#mode === "single") {
      this.#headTimer = setInterval(() => {
        // A server gone quiet forgets its idle heads too (else only a commit's start looks), between commits.
        if (this.#running === null && this.#heads.size >= this.#idleHeads.from) this.#forgetIdleHeads();
        this.#persistHeads(false);
      }, HEAD_PERSIST_MS);
    }
  }

  /** Calls `listener` after every commit with the new heads and the events it appended. */
  onAppended(listener: AppendListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * Moves what a stopped process left in the inbox to its streams (inbox mode); several writers
   * take over a KV one writer used last (`takeOverFromOneWriter`). Must run before anything reads a
   * stream or its head; the first commit waits for it too. Returns the events moved.
   */
  recover(): Promise<number> {
    if (this.#mode === "multi") {
      return this.#recovery ??= takeOverFromOneWriter(this.#kv, this.#retention ?? (() => undefined), this.#log)
        .then((t) => t?.moved ?? 0);
    }
    if (!this.#inboxFor) return Promise.resolve(0);
    return this.#recovery ??= recoverInbox(this.#kv, this.#epoch!).then(({ moved, next, nextPack }) => {
      this.#inbox.restore(next, nextPack);
      return moved;
    });
  }

  /**
   * Whether this writer may still write: one read (of the writer epoch in single mode). Once
   * another process claimed the epoch, every write is refused from then on.
   */
  async writable(): Promise<boolean> {
    const short = this.#shortage?.();
    if (short) return (this.#refused(new UnavailableError(short)), false);
    if (this.#lost || (this.#refusing && !(await this.#probe()))) return false;
    const writer = await this.#kv.get(keys.writer()); // in multi mode, only that KV answers
    if (this.#mode !== "single" || writer.versionstamp === this.#epoch) return true;
    this.#loseWriter();
    return false;
  }

  /**
   * While KV refuses writes, one small write at most every PROBE_MS (asked by `/healthz`): with no
   * traffic, nothing else would learn that the disk has room again.
   */
  async #probe(): Promise<boolean> {
    const now = this.#clock.now();
    if (now - this.#probedAt < PROBE_MS) return false;
    this.#probedAt = now;
    try {
      await this.#kv.set(keys.writeProbe(), now);
    } catch {
      return false;
    }
    this.#writesAgain();
    return true;
  }

  /** A write landed: if KV refused them until now, that is over (said once). */
  #writesAgain(): void {
    if (!this.#refusing) return;
    this.#refusing = null;
    this.#log?.("KV takes writes again");
    this.#onWritesAgain?.();
  }

  /** KV refuses writes, or Sluice does before they reach it: said once, until a write lands again. */
  #refused(err: UnavailableError): UnavailableError {
    if (!this.#refusing) {
      this.#refusing = err.message;
      this.#log?.(`${err.message}: answering "unavailable" (503) until a write lands again`);
    }
    return err;
  }

  /** Another process claimed the writer epoch: every write is refused from now on (said once). */
  #loseWriter(): LeaseLostError {
    if (!this.#lost) {
      this.#lost = new LeaseLostError("Another process took over this KV store; stopping writes");
      this.#log?.(
        "Another process took over this KV store (it claimed the writer epoch): every write is refused from now " +
          "on; stop this process",
      );
    }
    return this.#lost;
  }

  /** Events acked from the inbox and not yet moved to their streams. */
  get inboxSize(): number {
    return this.#inbox.size;
  }

  /** The value of a `withMove` set still waiting for its move (undefined: read KV). */
  withMove<T>(key: Deno.KvKey): T | undefined {
    return this.#inbox.withMove(key);
  }

  /** An event acked but still in the inbox (read-your-writes before it moved to its stream). */
  unmoved(stream: string, seq: number): AppendedEvent | undefined {
    return this.#inbox.unmoved(stream, seq);
  }

  /** A stream's events from seq `from` on still in the inbox, in order, at most `limit`. */
  unmovedFrom(stream: string, from: number, limit: number): AppendedEvent[] {
    return this.#inbox.unmovedFrom(stream, from, limit);
  }

  /** The lowest seq from `from` on of a stream's events still in the inbox (undefined: none). */
  firstUnmoved(stream: string, from: number): number | undefined {
    return this.#inbox.firstUnmoved(stream, from);
  }

  /** Lands what is queued, moves the inbox to its streams and writes every stale head key (before closing KV). */
  async close(): Promise<void> {
    clearInterval(this.#headTimer);
    await this.flush();
    while (await this.#persistHeads(true) > 0) { /* 500 a commit */ }
    await this.flush();
    clearTimeout(this.#moveTimer);
    this.#moveTimer = undefined;
  }

  /** Writes up to 500 stale head keys (those a second stale, or every one when `all`): how many, or -1 when KV refused. */
  async #persistHeads(all: boolean): Promise<number> {
    const now = this.#clock.now();
    const sets: SetOp[] = [];
    for (const [stream, h] of this.#heads) {
      if (h.seq !== h.persisted && (all || now - h.persistedAt >= HEAD_PERSIST_MS)) {
        sets.push({ key: keys.head(stream), value: h.seq });
        if (sets.length >= 500) break;
      }
    }
    if (sets.length === 0) return 0;
    return await this.write({ sets }).then(() => sets.length, () => -1);
  }

  /** Queues a request for the next commit; resolves once it landed. */
  write(req: WriteRequest): Promise<WriteResult> {
    if (this.#lost) return Promise.reject(this.#lost);
    const short = this.#shortage?.();
    if (short) return Promise.reject(this.#refused(new UnavailableError(short)));
    const cost = costOf(req);
    const total = cost.mutations + cost.streams.length + 2;
    if (total > KV_LIMITS.mutations) {
      return Promise.reject(
        new PayloadTooLargeError(
          `Too many writes for one commit: ${total} KV mutations (${cost.mutations} asked, ${cost.streams.length} ` +
            `stream head(s) and 2 of Sluice's), over the ${KV_LIMITS.mutations} one commit holds (a document write ` +
            "or a publish takes 1, a queued task 2)",
        ),
      );
    }
    if (cost.bytes > KV_LIMITS.commitBytes || cost.keyBytes > KV_LIMITS.commitKeyBytes) {
      return Promise.reject(
        new PayloadTooLargeError(`Write of ${cost.bytes} bytes is over KV's commit limit`),
      );
    }
    return new Promise((resolve, reject) => {
      this.#pending.push({ req, cost, resolve, reject });
      this.#running ??= this.#drain();
    });
  }

  /** The head of a stream as this writer knows it (0 for an empty stream). */
  async head(stream: string): Promise<number> {
    await this.#loadHeads([stream]);
    return this.#heads.get(stream)?.seq ?? 0;
  }

  /** A stream's head for counting, with no read: what this writer knows, or the stream's head key if higher. */
  readonly headOf = (stream: string, headKey: number): number => Math.max(this.#heads.get(stream)?.seq ?? 0, headKey);

  /** One writer's exact head of a stream it has written or read (undefined: unknown here, read KV). */
  exactHead(stream: string): number | undefined {
    return this.#mode === "single" ? this.#heads.get(stream)?.seq : undefined;
  }

  /** Forgets cached heads (another writer may have moved them). */
  forget(streams?: readonly string[]): void {
    if (!streams) this.#heads.clear();
    else for (const s of streams) this.#heads.delete(s);
  }

  /** Resolves once every request queued so far has landed or failed, and the inbox has moved. */
  async flush(): Promise<void> {
    for (;;) {
      if (this.#running) await this.#running;
      else if (this.#lost || this.#inbox.size === 0) return;
      else if (this.#moving) await new Promise((r) => setTimeout(r, 20)); // a refused move is tried again soon
      else if (this.#inbox.waiting > 0) this.#startMove();
      else return;
    }
  }

  async #drain(): Promise<void> {
    try {
      while (this.#pending.length > 0) {
        if (this.#heads.size >= this.#idleHeads.from) this.#forgetIdleHeads();
        const batch = this.#take();
        await traced("sluice.kv.commit", { requests: batch.length }, () => this.#commit(batch, 0));
      }
    } finally {
      this.#running = null;
      this.#answerLanded();
    }
  }

  /**
   * Takes the pending requests of the next commit: of each kind (acks, the inbox's moves, background
   * work) the longest run, in order, that fits. A request that checks a key an earlier request of
   * the batch writes waits for the next commit: in one atomic commit both checks would see the old
   * version and both writes would land (a lost update).
   *
   * Someone waits for the acks (a device): they go first. Background work (a batch's effects,
   * snapshots) fills the rest, up to BACKGROUND_SHARE of the acks' mutations (at least
   * BACKGROUND_MIN), so that a burst of ingest keeps short commits and the processing catches up
   * in bigger batches after it. While moves or background work wait, the acks take at most
   * ACK_SHARE of the commit, so that under a sustained overload the processing and the moves go on.
   */
  #take(): Pending[] {
    const streams = new Set<string>();
    const written = new Set<string>();
    let mutations = 1, bytes = 0, keyBytes = 0, checks = this.#mode === "single" ? 1 : 0;
    const urgent = this.#pending.filter((p) => p.req.urgent);
    const ordered = urgent.length === 0 || urgent.length === this.#pending.length
      ? this.#pending
      : [...urgent, ...this.#pending.filter((p) => !p.req.urgent)];
    const onlyAcks = !this.#pending.some((p) => kindOf(p) !== "ack");
    const ackCap = onlyAcks ? Infinity : KV_LIMITS.mutations * ACK_SHARE;
    const closed = new Set<Kind>();
    const taken: Pending[] = [];
    let acks = 0, background = 0;
    for (const p of ordered) {
      const kind = kindOf(p);
      if (closed.has(kind)) continue;
      const fresh = p.cost.streams.filter((s) => !streams.has(s));
      const m = mutations + p.cost.mutations + fresh.length;
      const c = checks + p.cost.checks + (this.#mode === "multi" ? fresh.length : 0);
      const b = bytes + p.cost.bytes + fresh.length * 40;
      const k = keyBytes + p.cost.keyBytes + fresh.length * 40;
      const overShare = kind === "ack"
        ? acks + p.cost.mutations > ackCap
        : kind === "background" && urgent.length > 0 &&
          background >= Math.max(BACKGROUND_MIN, BACKGROUND_SHARE * acks);
      if (
        taken.length > 0 &&
        (overShare || m > KV_LIMITS.mutations || c > KV_LIMITS.checks || b > KV_LIMITS.commitBytes ||
          k > KV_LIMITS.commitKeyBytes || p.cost.checkKeys.some((key) => written.has(key)))
      ) {
        closed.add(kind); // the rest of this kind waits, in order, for the next commit
        if (onlyAcks || closed.size === 3) break; // nothing else to take
        continue;
      }
      for (const s of fresh) streams.add(s);
      for (const key of p.cost.writeKeys) written.add(key);
      mutations = m, checks = c, bytes = b, keyBytes = k;
      if (kind === "ack") acks += p.cost.mutations;
      if (kind === "background") background += p.cost.mutations;
      taken.push(p);
    }
    const set = new Set(taken);
    this.#pending = this.#pending.filter((p) => !set.has(p));
    return taken;
  }

  async #commit(batch: Pending[], attempt: number): Promise<void> {
    const started = performance.now();
    let live: Pending[];
    try {
      await this.recover();
      await this.#loadHeads(batch.flatMap((p) => p.cost.streams));
      live = this.#rejectStaleExpectations(batch);
    } catch (err) {
      this.#answerLanded(); // earlier requests hear first
      for (const p of batch) p.reject(err);
      return;
    }
    if (live.length === 0) return;
    const at = this.#lastAt = Math.max(this.#clock.now(), this.#lastAt);
    let built: Built;
    try {
      built = this.#build(live, at);
    } catch (err) {
      this.#answerLanded();
      // A value KV cannot serialize fails its own request, not its neighbours (nor the process).
      if (live.length > 1) return this.#isolate(live);
      live[0]!.reject(asKvError(err));
      return;
    }
    const { op, next, results, appended, heard, inboxed, mutations, packs, marker, persisted, woken } = built;

    const landing = op.commit(); // its failures come through the promise
    this.#answerLanded();
    let res: Deno.KvCommitResult | Deno.KvCommitError;
    try {
      res = await landing;
    } catch (err) {
      // A request KV refuses (too large, bad key) must not sink its neighbours.
      if (live.length > 1) return this.#isolate(live);
      const refused = asKvError(err);
      live[0]!.reject(refused instanceof UnavailableError ? this.#refused(refused) : refused);
      return;
    }
    if (res.ok) this.#writesAgain();
    if (res.ok) {
      for (const [stream, seq] of next) {
        const h = this.#heads.get(stream)!;
        h.seq = seq;
        h.versionstamp = res.versionstamp;
        h.usedAt = at;
        if (persisted.has(stream)) h.persisted = seq, h.persistedAt = at;
      }
      for (const s of live.flatMap((p) => p.req.sets ?? [])) this.#notePersistedHead(s, at);
      this.#onCommit?.({ requests: live.length, mutations, ms: performance.now() - started });
      for (const p of live) if (p.move) this.#moved(p.move);
      this.#inbox.landed(packs, marker);
      if (inboxed.length > 0) this.#scheduleMove();
      this.#landed.push(() => {
        // The wake first: it sets up the lanes whose tails the listeners fill (no read needed then).
        if (woken.length > 0) loudly(() => this.#waker?.committed(woken));
        live.forEach((p, i) => p.resolve({ positions: results[i]!, at }));
        if (heard.size > 0) { for (const l of this.#listeners) loudly(() => l(heard, appended)); }
      });
      return;
    }
    await this.#onCheckFailed(live, attempt);
  }

  /** The atomic operation of a batch, and what to do once it landed. Throws when a value cannot be serialized. */
  #build(live: readonly Pending[], at: number): Built {
    const op = this.#kv.atomic();
    const next = new Map<string, number>();
    const results: Position[][] = [];
    const appended: AppendedEvent[] = [];
    /** Heads the listeners hear of (events acked from the inbox count: lanes take them from memory). */
    const heard = new Map<string, number>();
    /** Streams whose appended events carry an expiry of their own (topics): their head keys are written at once. */
    const expiring = new Set<string>();
    const inboxed: Unmoved[] = [];
    const wake = new Set<string>();
    let mutations = 0;
    for (const p of live) {
      const positions: Position[] = [];
      if (p.move) mutations += moveOut(op, p.move);
      /** The request's first event that went to the inbox: its `withMove` keys go with its move. */
      let inboxedFirst: Unmoved | undefined;
      for (const [i, { stream, event, expireIn: own }] of (p.req.appends ?? []).entries()) {
        const expireIn = own ?? this.#retention?.(stream);
        if (own !== undefined) expiring.add(stream);
        const seq = (next.get(stream) ?? this.#heads.get(stream)?.seq ?? 0) + 1;
        next.set(stream, seq);
        positions.push({ stream, seq });
        const value = { type: event.type, data: event.data, at };
        const n = this.#inbox.entryNumber(inboxed.length);
        heard.set(stream, seq);
        if (this.#listeners.size > 0) appended.push({ stream, seq, ...value });
        // A full inbox, or an event too big for a pack: straight to its stream.
        if (
          this.#inboxFor?.(stream) && this.#inbox.size + inboxed.length < this.#limit &&
          p.cost.appendBytes[i]! <= PACK_BYTES
        ) {
          const entry: Unmoved = {
            n,
            stream,
            seq,
            ...value,
            ...(expireIn === undefined ? {} : { expireIn }),
            sets: [],
            bytes: p.cost.appendBytes[i]!,
            queuedAt: 0,
          };
          inboxedFirst ??= entry;
          inboxed.push(entry);
          continue;
        }
        op.set(keys.event(stream, seq), value, eventExpiry(expireIn, this.#mode === "single"));
        mutations++;
      }
      for (const s of p.req.sets ?? []) {
        const value = "derive" in s ? s.derive(positions) : s.value;
        if (s.withMove && inboxedFirst) {
          inboxedFirst.sets.push({ key: s.key, value, ...(s.expireIn === undefined ? {} : { expireIn: s.expireIn }) });
          continue;
        }
        op.set(s.key, value, s.expireIn === undefined ? undefined : { expireIn: s.expireIn });
        mutations++;
      }
      for (const k of p.req.deletes ?? []) op.delete(k), mutations++;
      if (p.req.checks?.length) op.check(...p.req.checks);
      for (const s of p.req.wake ?? []) wake.add(s);
      results.push(positions);
    }
    const packs = pack(inboxed);
    for (const [i, entries] of packs.entries()) {
      op.set(this.#inbox.packKey(i), { entries: entries.map(inboxEntry) } satisfies InboxPack);
      mutations++;
    }
    const moving = new Set<Unmoved>();
    for (const p of live) if (p.move) { for (const u of p.move) moving.add(u); }
    mutations += deleteEmptiedPacks(op, moving);
    const marker = this.#inbox.markerAfter(moving);
    if (marker > this.#inbox.marker) op.set(keys.inboxMoved(), marker), mutations++;
    const persisted = new Set<string>();
    for (const [stream, seq] of next) {
      const h = this.#heads.get(stream);
      if (this.#mode === "multi") {
        op.check({ key: keys.head(stream), versionstamp: h?.versionstamp ?? null });
      } else if (h && h.persisted > 0 && at - h.persistedAt < HEAD_PERSIST_MS && !expiring.has(stream)) {
        // A known stream: its events are the truth, the head key follows within a second. Not for a topic:
        // its last events may expire while Sluice is down, and a head key that lagged them would give
        // their seqs out again (a subscriber that saw them would skip the new ones).
        continue;
      }
      op.set(keys.head(stream), seq); // a new stream's head key is written at once: listings find it
      persisted.add(stream);
      mutations++;
    }
    if (this.#mode === "single") op.check({ key: keys.writer(), versionstamp: this.#epoch! });
    const woken = [...wake].map((stream) => ({ stream, seq: heard.get(stream) ?? next.get(stream) }));
    if (woken.length > 0 && this.#waker?.attach(op, woken)) mutations++;
    return { op, next, results, appended, heard, inboxed, mutations, packs, marker, persisted, woken };
  }

  /** Gives the answers of the commits that landed, in order (each listener's error is kept to itself). */
  #answerLanded(): void {
    const due = this.#landed;
    this.#landed = [];
    for (const answer of due) answer();
  }

  /**
   * Moves the inbox's events to their streams: at once under light load; under load once
   * `INBOX_MOVE_GROUP` wait or the oldest waited `INBOX_MOVE_DELAY_MS`. A move goes stream by
   * stream, one commit at a time; its commits are urgent, like the acks they take turns with, so
   * the inbox keeps pace with a burst of ingest (and its memory stays bounded).
   */
  #scheduleMove(): void {
    if (this.#lost || this.#moving) return;
    if (this.#inbox.moving) return this.#queueMove();
    const waiting = this.#inbox.waiting;
    if (waiting === 0) return;
    const light = waiting <= INBOX_MOVE_AT_ONCE && this.#pending.length === 0;
    const wait = light || waiting >= INBOX_MOVE_GROUP
      ? 0
      : INBOX_MOVE_DELAY_MS - (performance.now() - this.#inbox.oldestWaitingAt);
    if (wait <= 0) return this.#startMove();
    this.#moveTimer ??= setTimeout(() => {
      this.#moveTimer = undefined;
      this.#scheduleMove();
    }, wait);
  }

  /** Starts moving every event waiting in the inbox, grouped by stream. */
  #startMove(): void {
    clearTimeout(this.#moveTimer);
    this.#moveTimer = undefined;
    this.#inbox.startMove();
    this.#queueMove(); // callers start a move only when none is in flight
  }

  /** Queues the next commit of the move under way (or again `again`, which KV refused). */
  #queueMove(again?: readonly Unmoved[]): void {
    const { move, mutations, bytes, keyBytes } = this.#inbox.nextMove(again);
    this.#moving = true;
    const cost: Cost = {
      mutations,
      bytes,
      keyBytes,
      checks: 0,
      streams: [],
      appendBytes: [],
      checkKeys: [],
      writeKeys: [],
    };
    this.#pending.push({
      req: { urgent: true },
      move,
      cost,
      resolve: () => {},
      reject: () => {
        // KV refused the move (it took the same events into the inbox): try again shortly, with half of
        // them when there are several (the rest go next), in case the share itself was what KV refused.
        if (this.#lost) return;
        const half = Math.ceil(move.length / 2);
        if (half < move.length) this.#inbox.putBack(move.slice(half));
        setTimeout(() => this.#queueMove(move.slice(0, half)), 100);
      },
    });
    this.#running ??= this.#drain();
  }

  /** Some of the inbox's events reached their streams: the next share of the move may go. */
  #moved(move: readonly Unmoved[]): void {
    this.#inbox.moved(move);
    this.#moving = false;
    this.#scheduleMove();
  }

  async #onCheckFailed(live: Pending[], attempt: number): Promise<void> {
    if (this.#mode === "single") {
      const writer = await this.#kv.get(keys.writer());
      if (writer.versionstamp !== this.#epoch) {
        const lost = this.#loseWriter();
        for (const p of [...live, ...this.#pending.splice(0)]) p.reject(lost);
        return;
      }
    } else {
      this.forget(live.flatMap((p) => p.cost.streams));
    }
    // Reread, reject only the losers (a request whose own check fails), retry the rest.
    const survivors = await this.#dropFailedChecks(live);
    if (survivors.length === 0) return;
    if (attempt >= this.#maxRetries) {
      const err = new ConcurrencyError(`Write still conflicting after ${attempt + 1} attempts`);
      for (const p of survivors) p.reject(err);
      return;
    }
    if (attempt >= 2) await new Promise((r) => setTimeout(r, Math.random() * 5 * attempt));
    return this.#commit(survivors, attempt + 1);
  }

  async #dropFailedChecks(live: Pending[]): Promise<Pending[]> {
    const checks = live.flatMap((p) => p.req.checks ?? []);
    if (checks.length === 0) return live;
    const current = new Map<string, string | null>();
    for (const chunk of chunked(checks)) {
      const entries = await this.#kv.getMany(chunk.map((c) => c.key));
      entries.forEach((e, j) => current.set(keyId(chunk[j]!.key), e.versionstamp));
    }
    return live.filter((p) => {
      const ok = (p.req.checks ?? []).every((c) => current.get(keyId(c.key)) === c.versionstamp);
      if (!ok) p.reject(new ConcurrencyError("A precondition of this write no longer holds"));
      return ok;
    });
  }

  async #isolate(batch: Pending[]): Promise<void> {
    for (const p of batch) await this.#commit([p], 0);
  }

  /** Rejects requests whose expected heads no longer hold; returns the rest. */
  #rejectStaleExpectations(batch: Pending[]): Pending[] {
    const next = new Map<string, number>();
    const live: Pending[] = [];
    for (const p of batch) {
      const expected = p.req.expectedHeads ?? {};
      const stale = Object.entries(expected).find(([stream, seq]) =>
        (next.get(stream) ?? this.#heads.get(stream)?.seq ?? 0) !== seq
      );
      if (stale) {
        const [stream, seq] = stale;
        this.#answerLanded(); // the write that moved the head is answered before this refusal
        p.reject(
          ConcurrencyError.head(stream, seq, next.get(stream) ?? this.#heads.get(stream)?.seq ?? 0),
        );
        continue;
      }
      for (const { stream } of p.req.appends ?? []) {
        next.set(stream, (next.get(stream) ?? this.#heads.get(stream)?.seq ?? 0) + 1);
      }
      live.push(p);
    }
    return live;
  }

  /**
   * Forgets the heads idle for a while that KV holds exactly (the head key written, no event of the stream waiting
   * in the inbox). Called between commits, none in flight: every commit loads the heads it needs. A scan at most
   * every quarter of the idle time: memory stays within the streams used in the last 1.25 idle times.
   */
  #forgetIdleHeads(): void {
    const now = this.#clock.now();
    if (now < this.#scanAt) return;
    this.#scanAt = now + this.#idleHeads.afterMs / 4;
    const before = now - this.#idleHeads.afterMs;
    for (const [stream, h] of this.#heads) {
      if (h.usedAt <= before && h.seq === h.persisted && this.#inbox.firstUnmoved(stream, 0) === undefined) {
        this.#heads.delete(stream);
      }
    }
  }

  /** Heads this writer keeps in memory. */
  get heads(): number {
    return this.#heads.size;
  }

  /** A head key written by a plain set (the lazy flush) counts as persisted. */
  #notePersistedHead(s: SetOp, at: number): void {
    if (s.key[0] !== "head" || !("value" in s)) return;
    const h = this.#heads.get(s.key[1] as string);
    if (h && s.value === h.seq) h.persisted = h.seq, h.persistedAt = at;
  }

  async #loadHeads(streams: readonly string[]): Promise<void> {
    const missing = [...new Set(streams)].filter((s) => !this.#heads.has(s));
    if (missing.length > 0) this.#answerLanded(); // landed answers are not held back by these reads
    await Promise.all(
      chunked(missing).map(async (chunk) => {
        const entries = await this.#kv.getMany<number[]>(chunk.map((s) => keys.head(s)));
        // A stream whose events expire with no retention of their own (tasks, TASK_RETENTION): its cursor
        // too, as its events past a lagging head key may be gone. Other streams need no read of it.
        const expiring = this.#mode === "single" ? chunk.filter((s) => this.#retention?.(s) !== undefined) : [];
        const cursors = new Map<string, number>();
        if (expiring.length > 0) {
          const read = await this.#kv.getMany<number[]>(expiring.map((s) => keys.cursor(s)));
          read.forEach((c, i) => cursors.set(expiring[i]!, c.value ?? 0));
        }
        await Promise.all(entries.map(async (e, i) => {
          const stream = chunk[i]!;
          const hinted = e.value ?? 0;
          // One writer's head keys may lag (written lazily, or cut short by a crash): the events decide,
          // or, when those expired, the cursor that ran past them (a seq is never given out twice). A stream
          // with no head key has no events: its first commit wrote the key with them (no read of its events, a
          // burst of new devices costs a read less each). Several writers keep them exact (and set those a
          // single writer left at the takeover).
          const seq = this.#mode === "multi" ? hinted : Math.max(
            e.versionstamp === null ? 0 : await headFrom(this.#kv, stream, hinted),
            cursors.get(stream) ?? 0,
          );
          // Not over a head set meanwhile (a commit that loaded it too and landed since): that one is newer.
          if (this.#heads.has(stream)) return;
          this.#heads.set(stream, {
            seq,
            versionstamp: e.versionstamp,
            persisted: hinted,
            persistedAt: 0,
            usedAt: this.#clock.now(),
          });
        }));
      }),
    );
  }
}

function costOf(req: WriteRequest): Cost {
  let bytes = 0, keyBytes = 0, mutations = 0;
  const writeKeys: string[] = [];
  const appendBytes: number[] = [];
  for (const { stream, event, size } of req.appends ?? []) {
    const b = stream.length + 16 + (size ?? jsonSize(event.data)) + event.type.length + 24;
    keyBytes += stream.length + 16;
    bytes += b;
    appendBytes.push(b);
    mutations++;
  }
  const checked = (req.checks?.length ?? 0) > 0;
  for (const s of req.sets ?? []) {
    if (checked || s.key[0] === "doc") writeKeys.push(keyId(s.key));
    const k = keySize(s.key);
    keyBytes += k;
    bytes += k + ("derive" in s ? 256 : jsonSize(s.value));
    mutations++;
  }
  for (const k of req.deletes ?? []) keyBytes += keySize(k), mutations++, writeKeys.push(keyId(k));
  const streams = [...new Set((req.appends ?? []).map((a) => a.stream))];
  const checkKeys = (req.checks ?? []).map((c) => keyId(c.key));
  return { mutations, bytes, keyBytes, checks: checkKeys.length, streams, appendBytes, checkKeys, writeKeys };
}

function jsonSize(v: unknown): number {
  if (v === undefined) return 1;
  if (typeof v === "string") return v.length + 2;
  if (typeof v === "number") return 9;
  try {
    return JSON.stringify(v)?.length ?? 1;
  } catch {
    return 1024; // bigint or cycles: KV will measure for real
  }
}

/** Runs `f`; what it throws is thrown again from a microtask: a listener's bug stays loud without leaving later callers waiting. */
function loudly(f: () => void): void {
  try {
    f();
  } catch (err) {
    queueMicrotask(() => {
      throw err;
    });
  }
}
