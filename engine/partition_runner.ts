import { afterFailure, nextAttempt, type RetryRules, type RetryState } from "../actors/task_stream/retry_policy.ts";
import type { Clock } from "../core/clock.ts";
import {
  ConcurrencyError,
  describeError,
  ForbiddenError,
  LeaseLostError,
  PayloadTooLargeError,
  UnavailableError,
  ValidationError,
} from "../core/errors.ts";
import {
  channelOfTaskStream,
  channelOfTopicStream,
  TASK_STREAM_PREFIX,
  taskStream,
  TOPIC_STREAM_PREFIX,
  topicStream,
} from "../core/streams.ts";
import { redactTokens } from "../core/names.ts";
import type { Waker } from "../core/waker.ts";
import type { ChannelRegistry } from "../store/channel_registry.ts";
import type { Committer } from "../store/committer.ts";
import type { Lease, LeaseManager } from "../store/leases.ts";
import { headFrom } from "../store/heads.ts";
import { keys } from "../store/keys.ts";
import { ReadBatcher } from "../store/read_batcher.ts";
import { chunked } from "../store/kv_limits.ts";
import { readEvents } from "../store/kv_event_store.ts";
import type { StoredEvent } from "../store/event_store.ts";
import { type DeadLetter, withinValueLimit } from "./dead_letters.ts";
import type { EffectPlanner } from "./effect_planner.ts";
import { type Job, jobOf, type Lane, laneKey, subscriberConsumer, TASKS } from "./lanes.ts";
import type { ScriptExecutor } from "./script_pool.ts";
import { MAX_KEPT_RESULT, type Outcome } from "./script_runner.ts";
import type { ScriptRequest } from "./script_api.ts";
import { WritePlan } from "./write_plan.ts";
import { traced } from "../core/tracing.ts";
import { RecentResults } from "./recent_results.ts";
import { LogBudget } from "../core/log_budget.ts";

/** A finished task's record. */
export interface TaskResult {
  /** Absent in a KV record whose result was too big to keep. */
  readonly result?: unknown;
  readonly attempts: number;
  readonly finishedAt: number;
}

/** Counts of what the runner did, for metrics and logs. */
export interface RunnerStats {
  done: number;
  failedAttempts: number;
  dead: number;
  batches: number;
  /** Tasks that expired (`TASK_RETENTION`) before they ran, passed over. */
  expired: number;
}

export interface PartitionRunnerOptions {
  readonly kv: Deno.Kv;
  /** The process's batched reads: lanes first seen together (a burst of new devices) load ten keys a KV call. */
  readonly reads?: ReadBatcher;
  readonly committer: Committer;
  readonly executor: ScriptExecutor;
  readonly planner: EffectPlanner;
  readonly channels: ChannelRegistry;
  readonly waker: Waker;
  readonly clock: Clock;
  readonly retry: RetryRules;
  /** How long results of finished tasks are kept. */
  readonly resultTtlMs: number;
  /** Most tasks handed to a worker at once. */
  readonly batchSize?: number;
  /** Told of every script run (metrics). */
  readonly onRun?: (method: string, outcome: Outcome) => void;
  /** Partition leases, when several instances share the KV (Deploy); absent for one process. */
  readonly leases?: LeaseManager;
  readonly log?: (line: string) => void;
  /** Lanes kept in memory before idle ones are forgotten, and how long idle that is (see `IDLE_LANES`). */
  readonly idleLanes?: { readonly from: number; readonly afterMs: number };
}

type LaneJob = ReturnType<typeof jobOf>;

/** What a batch comes to: its writes and the lane's state once they landed. */
interface Settlement {
  readonly plan: WritePlan;
  readonly cursor: number;
  readonly retry: RetryState | null;
  readonly done: number;
  readonly failed?: boolean;
  readonly dead?: boolean;
  /** Said in the log once the settlement landed. */
  readonly deadLine?: string;
  readonly interrupted?: boolean;
}

interface LaneState {
  readonly lane: Lane;
  loaded: boolean;
  cursor: number;
  retry: RetryState | null;
  active: boolean;
  dirty: boolean;
  batchLimit: number;
  timer?: ReturnType<typeof setTimeout>;
  /** The batch being run: its first and last seqs, and the seq of the run going on (those after it wait). */
  running?: { from: number; to: number; at: number };
  /** The drain under way, while `active`. */
  drain?: Promise<void>;
  lease?: Lease;
  /** Batches in a row whose writes KV refused (a full disk): the backoff, and when it ends. */
  stalls?: number;
  stalledUntil?: number;
  /** Events this process appended after the cursor, by seq: drained without a read. */
  readonly tail: Map<number, StoredEvent>;
  /**
   * Resumed after Sluice stopped dead: its next task runs alone, marked in KV while it runs, until one has an
   * outcome. A task found marked at the next start was running when Sluice died again, and that counts as a
   * failed attempt: a script that takes the process down (out of memory, `Deno.exit` in-process) ends dead
   * after `MAX_ATTEMPTS` starts instead of bringing down every start.
   */
  suspect?: boolean;
  /** The seq this process marked as running (see `suspect`). */
  marked?: number;
  /** When its last drain ended (or it was made): a lane idle long enough is forgotten. */
  idleSince: number;
}

/** The longest a lane whose writes KV keeps refusing waits before it tries again. */
const STALL_MAX_MS = 30_000;
/** The failure counted for a task that was running, marked, when Sluice stopped dead. */
const DIED_RUNNING =
  "Sluice stopped dead while this task ran (the process crashed or was killed: out of memory, or a script's " +
  "Deno.exit in-process?); counted as a failed attempt";

/** How long a stop lets the script runs in progress finish before it cuts them. */
const STOP_GRACE_MS = 2_000;

/** Dead tasks logged one by one per minute; beyond that one line tells how many more. */
const DEAD_LINES_PER_MINUTE = 10;
/** The results one batch keeps in KV, in JSON bytes together: a share of KV's 800 KiB commit, whatever else it holds. */
const KEPT_PER_BATCH = 128 * 1024;
/** How long a lane whose read or write failed waits before it tries again. */
const LANE_RETRY_MS = 1000;
/**
 * Most lanes a sweep has draining at once (others wait their turn): a start with thousands of streams behind neither
 * holds a batch of each in memory at once nor buries the KV under their reads.
 */
export const SWEEP_WAVE = 256;

/** A range of a lane's queue a purge dropped, and when. */
export interface PurgedRange {
  readonly from: number;
  readonly to: number;
  readonly at: number;
}

/** Purged ranges kept a lane (the newest): an older one's tasks then show as done. */
const MAX_PURGED_RANGES = 20;
/** Streams whose head a sweep reads at once. */
const SWEEP_READS = 256;

/**
 * Lanes kept in memory before a new one has idle ones forgotten: a device that sent once keeps no memory for good (a
 * fleet's devices come and go). A lane forgotten costs one read of its cursor when its device sends again.
 */
const IDLE_LANES = { from: 10_000, afterMs: 10 * 60_000 };

/** Most events kept in lanes' tails at once (beyond that, lanes read from KV). */
const TAIL_BUDGET = 20_000;

/**
 * The partition actors: each lane (a task stream, or a topic and one subscriber script) is
 * drained in order from its cursor; a batch's effects, results and the cursor move land in one
 * commit, so a crash repeats a run but never its effects.
 */
export class PartitionRunner {
  readonly stats: RunnerStats = { done: 0, failedAttempts: 0, dead: 0, batches: 0, expired: 0 };
  /** Results of recently finished tasks. */
  readonly results = new RecentResults();
  readonly #lanes = new Map<string, LaneState>();
  readonly #active = new Set<Promise<void>>();
  readonly #batchSize: number;
  readonly #reads: ReadBatcher;
  #tailed = 0;
  /** When a new lane may next have idle ones forgotten. */
  #scanAt = 0;
  #idleTimer: ReturnType<typeof setInterval> | undefined;
  #stopping = false;
  #suspectTurn = Promise.resolve();
  readonly #deadLines = new LogBudget(
    (line) => this.#log(line),
    DEAD_LINES_PER_MINUTE,
    60_000,
    (n) => `${n} more task(s) went dead within the minute, not logged one by one: see GET /admin/dead-letters`,
  );
  readonly #failedLines = new LogBudget(
    (line) => this.#log(line),
    DEAD_LINES_PER_MINUTE,
    60_000,
    (n) => `${n} more lane failure(s) within the minute, not logged one by one (each lane tries again after a second)`,
  );
  readonly #expiredLines = new LogBudget(
    (line) => this.#log(line),
    DEAD_LINES_PER_MINUTE,
    60_000,
    (n) => `${n} more stream(s) had tasks that expired before they ran within the minute (sluice_tasks_expired_total)`,
  );

  constructor(private readonly options: PartitionRunnerOptions) {
    this.#batchSize = options.batchSize ?? 50;
    this.#reads = options.reads ?? new ReadBatcher(options.kv);
    options.committer.onAppended((_heads, events) => this.#keep(events));
  }

  /** Keeps freshly appended task events for their lanes, so draining them needs no read. */
  #keep(events: readonly StoredEvent[]): void {
    for (const e of events) {
      if (this.#tailed >= TAIL_BUDGET || !e.stream.startsWith(TASK_STREAM_PREFIX)) continue;
      const st = this.#lanes.get(laneKey({ stream: e.stream, consumer: TASKS }));
      if (!st || st.tail.has(e.seq)) continue;
      st.tail.set(e.seq, e);
      this.#tailed++;
    }
  }

  /**
   * The next events of a lane: from its tail or the inbox when they have them, else from KV (then
   * on from the inbox: a task acked from it reaches its stream's key later, in a grouped move).
   */
  async #next(st: LaneState): Promise<StoredEvent[]> {
    const from = st.cursor + 1;
    for (const seq of st.tail.keys()) {
      if (seq < from) st.tail.delete(seq), this.#tailed--;
    }
    const out = this.#fromMemory(st, from, []);
    if (out.length > 0) return out;
    // Caught up with a head this writer knows exactly: nothing to read (KV's one thread stays on writes).
    if ((this.options.committer.exactHead(st.lane.stream) ?? Infinity) < from) return out;
    const read = await readEvents(this.options.kv, st.lane.stream, from, st.batchLimit);
    if (!st.lane.stream.startsWith(TASK_STREAM_PREFIX)) return read;
    // A task stream may show a gap (a later event went straight to its key while an earlier one
    // still waits in the inbox): run only the unbroken run from the cursor, then on from memory.
    const events = this.#fromMemory(st, from, unbroken(read, from));
    // Looked for with or without TASK_RETENTION today: tasks written while it was set keep their expiry.
    if (events.length > 0) return events;
    return await this.#pastExpired(st, from, read.length > 0);
  }

  /**
   * The lane's next tasks are in neither KV nor memory (`laterKept`: later ones are in KV): KV deleted
   * them at their expiry (`TASK_RETENTION`) before they ran. The head is read first: every task up to
   * it has landed, so it is in KV or in memory unless it expired. Then memory is looked at and KV read
   * again, in that order, and the cursor moves past the missing tasks, up to the first one kept (or
   * the head, when none is: the lane's whole rest expired), in a commit of its own (so they are
   * counted once).
   */
  async #pastExpired(st: LaneState, from: number, laterKept: boolean): Promise<StoredEvent[]> {
    const stream = st.lane.stream;
    const head = this.options.committer.exactHead(stream) ??
      (await this.options.kv.get<number>(keys.head(stream))).value ?? 0;
    if (!laterKept && head < from) return []; // caught up: nothing is missing
    // Memory before KV: an event leaves memory (the inbox) only once its move landed in KV, so one that
    // is in memory now, or in KV at the read after, is kept; looked at the other way round, a move
    // landing in between would hide it from both.
    const inMemory = this.#firstInMemory(st, from);
    const again = await readEvents(this.options.kv, stream, from, st.batchLimit);
    const events = this.#fromMemory(st, from, unbroken(again, from));
    if (events.length > 0) return events;
    const kept = Math.min(again[0]?.seq ?? head + 1, inMemory);
    if (kept <= from) return [];
    const { plan, retry } = this.#advance(st, new WritePlan(), kept - 1);
    if (st.lease) plan.checks.push(st.lease.check);
    try {
      await this.options.committer.write(plan.toRequest());
    } catch (err) {
      // KV's own trouble (a full disk): wait, as a batch does, and look again.
      if (err instanceof UnavailableError) return this.#stall(st, err), [];
      throw err;
    }
    st.cursor = kept - 1;
    st.retry = retry;
    this.stats.expired += kept - from;
    this.#expiredLines.say(
      `${kept - from} task(s) of ${stream} (seq ${from}–${kept - 1}) expired before they ran ` +
        `(TASK_RETENTION, now or when they were queued); going on from ${kept}`,
    );
    return this.#fromMemory(st, kept, unbroken(again, kept));
  }

  /** The lowest seq from `from` on of the lane's events held in memory (its tail, the inbox); Infinity: none. */
  #firstInMemory(st: LaneState, from: number): number {
    let first = this.options.committer.firstUnmoved(st.lane.stream, from) ?? Infinity;
    for (const seq of st.tail.keys()) if (seq >= from && seq < first) first = seq;
    return first;
  }

  /** `out` (events from `from` on) extended with the lane's next events held in memory. */
  #fromMemory(st: LaneState, from: number, out: StoredEvent[]): StoredEvent[] {
    for (let seq = from + out.length; out.length < st.batchLimit; seq++) {
      const e = st.tail.get(seq) ?? this.options.committer.unmoved(st.lane.stream, seq);
      if (!e) break;
      out.push(e);
    }
    return out;
  }

  /** Starts taking wake-ups. */
  start(): void {
    this.options.waker.listen((wakes) => {
      for (const w of wakes) this.wakeStream(w.stream, w.seq);
    });
    // A server gone quiet forgets its idle lanes too (else only a new lane's making looks).
    const { from, afterMs } = this.options.idleLanes ?? IDLE_LANES;
    this.#idleTimer = setInterval(() => {
      if (this.#lanes.size >= from) this.#forgetIdle();
    }, Math.max(50, afterMs / 4));
    Deno.unrefTimer(this.#idleTimer);
  }

  /** Wakes every lane of a stream that has not yet processed `seq` (no seq: every lane). */
  wakeStream(stream: string, seq?: number): void {
    if (stream.startsWith(TASK_STREAM_PREFIX)) return this.wake({ stream, consumer: TASKS }, seq);
    if (stream.startsWith(TOPIC_STREAM_PREFIX)) {
      this.#lanesOf(stream).then((lanes) => {
        for (const lane of lanes) this.wake(lane, seq);
      }).catch((err) => this.#log(`Cannot wake subscribers of ${stream}: ${describeError(err)}`));
    }
  }

  /** Makes sure a lane gets drained (unless it is known to be past `seq` already). */
  wake(lane: Lane, seq?: number): void {
    if (this.#stopping) return;
    const key = laneKey(lane);
    const known = this.#lanes.get(key);
    if (known && seq !== undefined && known.loaded && !known.active && known.cursor >= seq && !known.retry) return;
    const st = known ?? this.#stateOf(lane);
    st.dirty = true;
    if (st.active) return;
    st.active = true;
    const run = this.#drain(st).catch((err) =>
      this.#failedLines.say(`Lane ${key} failed (${describeError(err)}); trying again in ${LANE_RETRY_MS / 1000} s`)
    );
    st.drain = run;
    this.#active.add(run);
    run.finally(() => this.#active.delete(run));
  }

  /** A lane's state, made on first use. */
  #stateOf(lane: Lane): LaneState {
    const key = laneKey(lane);
    let st = this.#lanes.get(key);
    if (!st) {
      st = {
        lane,
        loaded: false,
        cursor: 0,
        retry: null,
        active: false,
        dirty: false,
        batchLimit: this.#batchSize,
        tail: new Map(),
        idleSince: this.options.clock.now(),
      };
      if (this.#lanes.size >= (this.options.idleLanes ?? IDLE_LANES).from) this.#forgetIdle();
      this.#lanes.set(key, st);
    }
    return st;
  }

  /**
   * Forgets the lanes idle for a while whose state KV holds whole: not draining, nothing pending in memory (no retry
   * or stall timer, tail, lease, or mark of a crash's resumption). A drain ends once its lane has caught up, and an
   * event appended after wakes the lane again (made anew). A scan at most every quarter of the idle time: memory
   * stays within the lanes used in the last 1.25 idle times (at least `from`).
   */
  #forgetIdle(): void {
    const { afterMs } = this.options.idleLanes ?? IDLE_LANES;
    const now = this.options.clock.now();
    if (now < this.#scanAt) return;
    this.#scanAt = now + afterMs / 4;
    const before = now - afterMs;
    for (const st of this.#lanes.values()) {
      const idle = !st.active && st.idleSince <= before && st.timer === undefined && st.retry === null &&
        st.stalledUntil === undefined && !st.suspect && st.lease === undefined &&
        st.tail.size === 0;
      if (idle) this.#drop(st);
    }
  }

  /** Lanes this process keeps in memory. */
  get lanes(): number {
    return this.#lanes.size;
  }

  /**
   * Wakes every lane whose cursor is behind its head (work left by a stopped process), at most `SWEEP_WAVE` draining
   * at once, and says how many (not waiting for them to be woken); `topicsOnly`:
   * only the subscriber scripts' lanes (a channel changed elsewhere).
   */
  async sweep(topicsOnly = false, afterCrash = false): Promise<number> {
    const prefixes = topicsOnly ? [TOPIC_STREAM_PREFIX] : [TASK_STREAM_PREFIX, TOPIC_STREAM_PREFIX];
    const heads = await this.#headsIn(prefixes.map((p) => [p, p.slice(0, -1) + "0"] as const));
    const cursors = new Map<string, number>();
    // Subscriber scripts' cursors too: a lane without one counts as never run, and is woken.
    for await (const e of this.options.kv.list<number>({ prefix: keys.allCursors() })) {
      cursors.set(laneKey({ consumer: String(e.key[1]), stream: String(e.key[2]) }), e.value);
    }
    const behind: Lane[] = [];
    for (const [stream, head] of heads) {
      for (const lane of await this.#lanesOf(stream)) {
        if ((cursors.get(laneKey(lane)) ?? 0) < head) behind.push(lane);
      }
    }
    // Marked before any is woken: a message arriving meanwhile must not run a lane's next task unmarked.
    if (afterCrash) { for (const lane of behind) this.#stateOf(lane).suspect = true; }
    this.#wakeInWaves(behind).catch((err) => this.#log(`Resuming queued work failed: ${describeError(err)}`));
    return behind.length;
  }

  /**
   * Wakes the lanes of channel `name` behind their head, in waves as a sweep does, and says how many (not waiting for
   * them): its scripts were paused, and the messages that came meanwhile woke its lanes in vain.
   */
  async resumeChannel(name: string): Promise<number> {
    const { heads, lanes } = await this.#channelLanes(name);
    const cursors = (await Promise.all(
      chunked(lanes.map((l) => keys.cursor(l.stream, l.consumer))).map((c) => this.options.kv.getMany<number[]>(c)),
    )).flat();
    const behind = lanes.filter((l, i) => (cursors[i]!.value ?? 0) < this.#exactHead(l.stream, heads.get(l.stream)!));
    this.#wakeInWaves(behind).catch((err) => this.#log(`Resuming channel ${name} failed: ${describeError(err)}`));
    return behind.length;
  }

  /** A channel's streams (its task partitions and its topic) with their heads in KV, and their lanes. */
  async #channelLanes(name: string): Promise<{ heads: Map<string, number>; lanes: Lane[] }> {
    const tasks = taskStream(name, ""), topic = topicStream(name);
    const heads = await this.#headsIn([[tasks, tasks.slice(0, -1) + "0"], [topic, topic + "\0"]]);
    const lanes: Lane[] = [];
    for (const stream of heads.keys()) lanes.push(...await this.#lanesOf(stream));
    return { heads, lanes };
  }

  /** A stream's head: the writer's own when it knows it (acked tasks may still wait in its inbox), else KV's. */
  #exactHead(stream: string, inKv: number): number {
    return Math.max(inKv, this.options.committer.exactHead(stream) ?? 0);
  }

  /** The heads of the streams in the ranges `[start, end)` of stream ids, read past their head keys (which may lag). */
  async #headsIn(ranges: readonly (readonly [string, string])[]): Promise<Map<string, number>> {
    const heads = new Map<string, number>();
    for (const [start, end] of ranges) {
      for await (const e of this.options.kv.list<number>({ start: keys.head(start), end: keys.head(end) })) {
        heads.set(e.key[1] as string, e.value);
      }
    }
    const streams = [...heads];
    for (let at = 0; at < streams.length; at += SWEEP_READS) {
      await Promise.all(
        streams.slice(at, at + SWEEP_READS).map(async ([stream, hinted]) =>
          heads.set(stream, await headFrom(this.options.kv, stream, hinted))
        ),
      );
    }
    return heads;
  }

  /**
   * Drops what channel `name`'s lanes have queued up to now: its tasks, and the topic messages its subscriber scripts
   * have not run. Each lane's cursor moves to its head and its retry record goes, and the range dropped is recorded
   * (`GET /tasks/:id` shows those dead and discarded). The channel is paused, so its lanes take no batch: one under way
   * is waited for. A lane still draining then, or held by another instance, is left as it is (`busy`).
   */
  async purgeChannel(name: string): Promise<{ tasks: number; lanes: number; busy: number }> {
    const asked = this.options.clock.now();
    const { heads, lanes } = await this.#channelLanes(name);
    const done = { tasks: 0, lanes: 0, busy: 0 };
    for (let at = 0; at < lanes.length; at += SWEEP_READS) {
      await Promise.all(
        lanes.slice(at, at + SWEEP_READS).map(async (lane) => {
          const dropped = await this.#purgeLane(lane, this.#exactHead(lane.stream, heads.get(lane.stream)!), asked);
          if (dropped === null) done.busy++;
          else if (dropped > 0) done.tasks += dropped, done.lanes++;
        }),
      );
    }
    if (done.tasks > 0) {
      this.#log(`Purged channel ${name}: ${done.tasks} queued task(s) or run(s) dropped on ${done.lanes} stream(s)`);
    }
    return done;
  }

  /**
   * Moves a lane's cursor up to `head`, as a drain would (holding it meanwhile), short of the events committed after
   * `asked` (the heads are read as the purge goes, lane by lane: what came after it was asked stays). One committed in
   * the millisecond it was asked goes with the purge: a message acknowledged just before it was asked may have that
   * commit time. How many it dropped; null: busy.
   */
  async #purgeLane(lane: Lane, latest: number, asked: number): Promise<number | null> {
    if (!(await this.settle(lane, 2_000))) return null;
    const st = this.#stateOf(lane);
    if (st.active) return null;
    // Held as a drain holds it: a wake-up meanwhile only marks it dirty, and `settle` waits for this.
    st.active = true;
    let release = () => {};
    st.drain = new Promise<void>((r) => release = r);
    try {
      if (!(await this.#hold(st))) return null;
      st.loaded = false;
      await this.#load(st);
      const from = st.cursor + 1;
      let head = latest;
      while (head >= from && (await this.#committedAt(lane.stream, head)) > asked) head--;
      if (head < from) return 0;
      const { plan, retry } = this.#advance(st, new WritePlan(), head);
      const key = keys.purged(lane.stream, lane.consumer);
      const ranges = (await this.options.kv.get<PurgedRange[]>(key)).value ?? [];
      ranges.push({ from, to: head, at: this.options.clock.now() });
      plan.sets.push({ key, value: ranges.slice(-MAX_PURGED_RANGES) });
      if (st.lease) plan.checks.push(st.lease.check);
      await this.options.committer.write(plan.toRequest());
      st.cursor = head;
      st.retry = retry;
      return head - from + 1;
    } finally {
      await this.#letGo(st).catch(() => {});
      st.active = false;
      st.drain = undefined;
      release();
      if (st.dirty) this.wake(lane); // (paused: it looks and stops)
    }
  }

  /** When an event was committed (from the inbox, else KV); -Infinity: gone (expired). */
  async #committedAt(stream: string, seq: number): Promise<number> {
    const held = this.options.committer.unmoved(stream, seq);
    if (held) return held.at;
    return (await this.options.kv.get<{ at: number }>(keys.event(stream, seq))).value?.at ?? -Infinity;
  }

  /** Lanes draining now. */
  get draining(): number {
    return this.#active.size;
  }

  /**
   * Wakes `lanes` while fewer than `SWEEP_WAVE` of the drains it started go on; the rest as those end. Drains that
   * messages started do not count: lanes busy with new work must not hold back those the sweep resumes.
   */
  async #wakeInWaves(lanes: readonly Lane[]): Promise<void> {
    let going = 0;
    let room: (() => void) | null = null;
    for (const lane of lanes) {
      while (going >= SWEEP_WAVE && !this.#stopping) await new Promise<void>((resolve) => room = resolve);
      if (this.#stopping) return;
      const st = this.#lanes.get(laneKey(lane));
      if (st?.active) {
        st.dirty = true; // draining already: it goes on to its head (or, stopping for a pause, looks again)
        continue;
      }
      this.wake(lane);
      const drain = this.#lanes.get(laneKey(lane))?.drain;
      if (!drain) continue;
      going++;
      drain.finally(() => {
        going--;
        room?.();
        room = null;
      });
    }
  }

  /**
   * Where a task is in the batch its lane runs now: `running` (or run, its commit to come), `waiting` for the runs
   * before it in the batch, or null when it is in none.
   */
  inBatch(stream: string, seq: number, consumer = TASKS): "running" | "waiting" | null {
    const r = this.#lanes.get(laneKey({ stream, consumer }))?.running;
    if (!r || seq < r.from || seq > r.to) return null;
    return seq <= r.at ? "running" : "waiting";
  }

  /**
   * Stops taking work, lets the runs in progress finish for up to `graceMs`, and waits for their
   * commits. A run still going then is cut (its worker stopped), not counted: it runs again after
   * the next start. Waiting out a script's whole time limit (5 s by default) would outlast the
   * 5 s a stop has.
   */
  async stop(graceMs = STOP_GRACE_MS): Promise<void> {
    this.#stopping = true;
    clearInterval(this.#idleTimer);
    this.options.executor.halt();
    for (const st of this.#lanes.values()) clearTimeout(st.timer);
    const settled = (async () => {
      while (this.#active.size > 0) await Promise.allSettled([...this.#active]);
    })();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const cut = await Promise.race([
      settled.then(() => false),
      new Promise<boolean>((r) => timer = setTimeout(() => r(true), graceMs)),
    ]);
    clearTimeout(timer);
    if (cut) {
      this.#log(
        this.options.executor.isolated
          ? `Stopping: cut the script runs still going after ${graceMs / 1000} s (they run again after the start)`
          : `Stopping: script runs still going after ${graceMs / 1000} s run in-process and cannot be cut: ` +
            "waiting for them (they run again after the start)",
      );
      this.options.executor.close();
      await settled;
    }
    this.#deadLines.flush();
    this.#expiredLines.flush();
    await this.options.leases?.releaseAll();
  }

  /**
   * Waits, at most `maxMs`, until this process is not draining the lane (a subscriber script
   * removed from its channel finishes its batch, then stops). False: it still is.
   */
  async settle(lane: Lane, maxMs = 10_000): Promise<boolean> {
    const deadline = Date.now() + maxMs;
    let st = this.#lanes.get(laneKey(lane));
    while (st?.active && Date.now() < deadline) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([st.drain, new Promise((r) => timer = setTimeout(r, deadline - Date.now()))]);
      clearTimeout(timer);
      st = this.#lanes.get(laneKey(lane));
    }
    return !st?.active;
  }

  /** Forgets an idle lane's state (a subscriber script removed from its channel, or added again). */
  forget(lane: Lane): void {
    const st = this.#lanes.get(laneKey(lane));
    if (st && !st.active) this.#drop(st); // an active lane sees before its next batch that it was removed
  }

  #drop(st: LaneState): void {
    clearTimeout(st.timer);
    this.#tailed -= st.tail.size;
    this.#lanes.delete(laneKey(st.lane));
  }

  async #lanesOf(stream: string): Promise<Lane[]> {
    if (stream.startsWith(TASK_STREAM_PREFIX)) return [{ stream, consumer: TASKS }];
    const channel = await this.options.channels.get(channelOfTopicStream(stream));
    return (channel?.subscribers ?? []).map((s) => ({ stream, consumer: subscriberConsumer(s) }));
  }

  /** Whether a subscriber script's lane is still listed by its channel. */
  async #subscribed(lane: Lane): Promise<boolean> {
    const lanes = await this.#lanesOf(lane.stream);
    return lanes.some((l) => l.consumer === lane.consumer);
  }

  /** Whether the lane's channel is paused: its scripts wait for `resumeChannel` (a deleted channel's go on). */
  async #paused(lane: Lane): Promise<boolean> {
    const s = lane.stream;
    const name = s.startsWith(TASK_STREAM_PREFIX) ? channelOfTaskStream(s) : channelOfTopicStream(s);
    return (await this.options.channels.get(name))?.paused === true;
  }

  async #drain(st: LaneState): Promise<void> {
    try {
      while (!this.#stopping) {
        if (st.lane.consumer !== TASKS && !(await this.#subscribed(st.lane))) {
          st.dirty = false;
          await this.#letGo(st);
          this.#drop(st);
          return;
        }
        // Marked clean before the look: a resume's wake-up while it looks (a KV read after a channel change) marks
        // it dirty again, and it goes on.
        const dirty = st.dirty;
        st.dirty = false;
        if (await this.#paused(st.lane)) {
          await this.#letGo(st);
          return; // the channel's resume wakes it
        }
        st.dirty ||= dirty;
        if (!(await this.#hold(st))) return;
        await this.#load(st);
        const now = this.options.clock.now();
        if (st.stalledUntil !== undefined && st.stalledUntil > now) {
          st.dirty = false; // its timer wakes it when the stall is over
          this.#wakeAt(st, st.stalledUntil - now);
          await this.#letGo(st);
          return;
        }
        if (st.retry && st.retry.nextAt > now) {
          st.dirty = false; // the timer wakes it when the retry is due
          this.#wakeAt(st, st.retry.nextAt - now);
          await this.#letGo(st);
          return;
        }
        st.dirty = false;
        const events = await this.#next(st);
        if (events.length === 0) {
          if (st.dirty) continue;
          if (await this.#letGo(st)) continue;
          return;
        }
        const goOn = await traced(
          "sluice.lane.batch",
          { lane: laneKey(st.lane), tasks: events.length },
          (fail) => this.#runBatch(st, events.map((e) => jobOf(st.lane, e)), fail),
        );
        if (!goOn) {
          st.dirty = false; // its timer wakes it (KV refused its writes: a full disk, say)
          await this.#letGo(st);
          return;
        }
      }
    } catch (err) {
      // A read or write that failed (KV unavailable for a moment): the lane tries again after a while, its lease
      // given back meanwhile so that another instance may. Before, it stayed stopped (and its lease renewed).
      st.dirty = false;
      st.loaded = false;
      // Not when the lane's lease (or, for one process, the whole KV) went to another holder: the work is theirs.
      if (!this.#stopping && !(err instanceof LeaseLostError)) this.#wakeAt(st, LANE_RETRY_MS);
      await this.#letGo(st).catch(() => {});
      throw err;
    } finally {
      st.active = false;
      st.running = undefined;
      st.drain = undefined;
      st.idleSince = this.options.clock.now();
      if (st.dirty && !this.#stopping) this.wake(st.lane);
    }
  }

  /**
   * With leases: holds the lane's lease, taking it if free (and then rereading the lane's state,
   * which another instance may have moved). If another instance holds it, tries again when that
   * lease would run out, so a stopped holder's work is taken over within the lease's TTL.
   */
  async #hold(st: LaneState): Promise<boolean> {
    const leases = this.options.leases;
    if (!leases) return true;
    const name = laneKey(st.lane);
    const held = leases.held(name);
    if (held) {
      st.lease = held;
      return true;
    }
    const got = await leases.acquire(name);
    if ("heldFor" in got) {
      st.dirty = false;
      this.#wakeAt(st, got.heldFor + 100);
      return false;
    }
    st.lease = got;
    st.loaded = false;
    return true;
  }

  /** With leases: gives the lane's lease back; true when work arrived meanwhile (go on). */
  async #letGo(st: LaneState): Promise<boolean> {
    const leases = this.options.leases;
    if (!leases || !st.lease) return false;
    await leases.release(st.lease.name);
    st.lease = undefined;
    st.loaded = false;
    const head = (await this.options.kv.get<number>(keys.head(st.lane.stream))).value ?? 0;
    return head > st.cursor && !this.#stopping;
  }

  async #load(st: LaneState): Promise<void> {
    if (st.loaded) return;
    const [cursor, retry] = await this.#reads.getMany<[number, RetryState]>([
      keys.cursor(st.lane.stream, st.lane.consumer),
      keys.retry(st.lane.stream, st.lane.consumer),
    ]);
    st.cursor = cursor.value ?? 0;
    st.retry = retry.value;
    st.loaded = true;
  }

  /**
   * Runs a batch and commits its outcomes; `fail` marks its trace span when a run failed. False when
   * the lane must wait for its timer: KV refused even the record of the failure, and running the
   * batch again at once would only fail again (and run its scripts again).
   */
  async #runBatch(st: LaneState, jobs: readonly LaneJob[], fail: (message: string) => void): Promise<boolean> {
    if (!st.suspect) return await this.#runBatchNow(st, jobs, fail);
    // One resumed lane's marked task at a time, across lanes: a crash then marks only the run that caused it.
    const turn = this.#suspectTurn;
    let release = () => {};
    this.#suspectTurn = new Promise<void>((r) => release = r);
    await turn;
    try {
      return await this.#runBatchNow(st, jobs, fail);
    } finally {
      release();
    }
  }

  async #runBatchNow(st: LaneState, jobs: readonly LaneJob[], fail: (message: string) => void): Promise<boolean> {
    const marker = st.suspect ? await this.#mark(st, jobs) : undefined;
    if (marker) jobs = jobs.slice(0, 1);
    const runnable: Job[] = [];
    for (const j of jobs) {
      if ("error" in j || marker?.died) break;
      runnable.push(j);
    }
    const running = runnable.length
      ? { from: runnable[0]!.seq, to: runnable.at(-1)!.seq, at: runnable[0]!.seq }
      : undefined;
    st.running = running;
    const outcomes = await this.options.executor.run(
      runnable.map((j) => this.#request(st, j)),
      // The next one runs only after a success: a failure ends the batch.
      (i, outcome) => outcome.ok && (running!.at = Math.max(running!.at, runnable[i + 1]?.seq ?? running!.to)),
    );
    st.running = undefined;
    if (this.options.onRun) outcomes.forEach((o, i) => this.options.onRun!(runnable[i]!.method, o));
    const failed = outcomes.find((o) => !o.ok);
    if (failed && !failed.ok) fail(failed.error);
    this.stats.batches++;
    if (marker?.died) outcomes.push({ ok: false, error: DIED_RUNNING, ms: 0 });
    const now = this.options.clock.now();
    let settled = await this.#settle(st, jobs, outcomes, now);
    const outcome = outcomes[0];
    // Its outcome lands with the marker's removal; a run cut by a stop keeps it (a graceful stop clears them all).
    const marked = marker && outcome && !(!outcome.ok && outcome.interrupted);
    if (marked) settled.plan.deletes.push(keys.runMarker(st.lane.stream, st.lane.consumer));
    if (st.lease) {
      if (!this.options.leases?.held(st.lease.name)) {
        st.loaded = false; // the lease ran out meanwhile: the new holder redoes this batch
        return true;
      }
      settled.plan.checks.push(st.lease.check);
    }
    try {
      if (!settled.plan.empty) settled.plan.landed(await this.options.committer.write(settled.plan.toRequest()));
    } catch (err) {
      if (err instanceof LeaseLostError) throw err;
      // KV's own trouble (a full disk): no fault of the tasks, so no attempt is spent; wait and run them again.
      if (err instanceof UnavailableError) return this.#stall(st, err);
      if (err instanceof ConcurrencyError) {
        // A document it read changed meanwhile, or the lease moved: run the batch again, uncounted.
        st.dirty = true;
        st.loaded = false;
        return true;
      }
      if (jobs.length > 1) {
        // Half as many, until the writes fit a commit or the one task whose writes KV refuses is found
        // (it grows back a quarter a batch: going straight back to the full batch ran each script ~30 times).
        st.batchLimit = Math.max(1, Math.floor(jobs.length / 2));
        st.dirty = true;
        return true;
      }
      // Writes too big for KV, or values it cannot store, fail the same way every time: dead at once.
      const permanent = err instanceof PayloadTooLargeError || err instanceof ValidationError;
      settled = this.#failure(st, jobs[0]!, `Could not commit the run's writes: ${describeError(err)}`, now, {
        permanent,
      });
      if (marked) settled.plan.deletes.push(keys.runMarker(st.lane.stream, st.lane.consumer));
      if (st.lease) settled.plan.checks.push(st.lease.check);
      try {
        await this.options.committer.write(settled.plan.toRequest());
      } catch (again) {
        if (again instanceof LeaseLostError) throw again;
        return this.#stall(st, again);
      }
    }
    if (st.stalls) this.#log(`Lane ${laneKey(st.lane)} commits again`), st.stalls = 0, st.stalledUntil = undefined;
    if (settled.deadLine) this.#deadLines.say(settled.deadLine);
    this.stats.done += settled.done;
    if (settled.dead) this.stats.dead++;
    if (settled.failed) this.stats.failedAttempts++;
    st.cursor = settled.cursor;
    st.retry = settled.retry;
    if (marked && !marker.died) st.suspect = false;
    st.batchLimit = Math.min(this.#batchSize, st.batchLimit + Math.max(1, st.batchLimit >> 2));
    if (settled.interrupted) st.dirty = true;
    if (settled.failed && settled.retry) {
      const delay = Math.max(0, settled.retry.nextAt - now);
      this.options.waker.later(st.lane.stream, delay).catch(() => {});
      this.#wakeAt(st, delay);
    }
    return true;
  }

  /**
   * For a lane resumed after a crash: whether its next task was already marked as running (Sluice died during it
   * again), else marks it before it runs. Undefined when the batch starts with no task to run.
   */
  async #mark(st: LaneState, jobs: readonly LaneJob[]): Promise<{ died: boolean } | undefined> {
    const first = jobs[0];
    if (!first || "error" in first) return undefined;
    const key = keys.runMarker(st.lane.stream, st.lane.consumer);
    // Marked by an earlier process, not by this one (whose batch may have failed to commit, say).
    if (st.marked !== first.seq && (await this.options.kv.get<number>(key)).value === first.seq) return { died: true };
    await this.options.kv.set(key, first.seq);
    st.marked = first.seq;
    return { died: false };
  }

  /**
   * KV refused the batch's writes, even a failure's record: the lane waits, ever longer up to
   * STALL_MAX_MS, before it runs the batch again (a wake-up meanwhile does not start it early). Said
   * once: a full disk would say it for every lane, every time. False: the drain stops here.
   */
  #stall(st: LaneState, err: unknown): false {
    st.stalls = (st.stalls ?? 0) + 1;
    if (st.stalls === 1) {
      this.#log(
        `Lane ${laneKey(st.lane)} cannot commit: ${describeError(err)}; trying again, ` +
          `ever more slowly (up to every ${STALL_MAX_MS / 1000} s)`,
      );
    }
    const delay = Math.min(STALL_MAX_MS, this.options.retry.baseDelayMs * 2 ** (st.stalls - 1));
    st.stalledUntil = this.options.clock.now() + delay;
    this.#wakeAt(st, delay);
    return false;
  }

  #request(st: LaneState, j: Job): ScriptRequest {
    return {
      method: j.method,
      body: j.params,
      params: j.params,
      device: j.device,
      channel: channelOfLane(st.lane),
      taskId: j.taskId,
      attempt: nextAttempt(st.retry, j.seq),
      receivedAt: new Date(j.receivedAt).toISOString(),
    };
  }

  /** The writes that follow from a batch's outcomes: effects and results of the leading successes,
   * then the first failure's retry or dead-letter record, and the cursor. */
  async #settle(
    st: LaneState,
    jobs: readonly LaneJob[],
    outcomes: readonly Outcome[],
    now: number,
  ): Promise<Settlement> {
    const plan = new WritePlan();
    let cursor = st.cursor, done = 0, keptBytes = 0;
    // With leases (instances share the KV, as on Deploy) every task's result is kept in KV: the next poll may reach
    // another instance. Subscriber runs' are not (one key a run and a script, for a day, for little use).
    const keepAll = this.options.leases !== undefined && st.lane.consumer === TASKS;
    for (const [i, job] of jobs.entries()) {
      const outcome = outcomes[i];
      if ("error" in job) return this.#failure(st, job, job.error, now, { plan, cursor, done });
      if (!outcome) break;
      if (!outcome.ok && outcome.interrupted) return { ...this.#advance(st, plan, cursor), done, interrupted: true };
      if (!outcome.ok) {
        const permanent = outcome.permanent !== undefined;
        return this.#failure(st, job, outcome.error, now, { plan, cursor, done, permanent });
      }
      try {
        plan.merge(await this.options.planner.plan(outcome.effects, job, outcome.reads));
      } catch (err) {
        // An effect no attempt can make (a system channel, an invalid name, too big) is dead at once; an
        // unknown channel or script may be created meanwhile, so that one is retried.
        const permanent = err instanceof ValidationError || err instanceof ForbiddenError ||
          err instanceof PayloadTooLargeError;
        return this.#failure(st, job, describeError(err), now, { plan, cursor, done, permanent });
      }
      const result: TaskResult = { result: outcome.result, attempts: nextAttempt(st.retry, job.seq), finishedAt: now };
      // Results live in memory; one that took retries is also kept in KV, so its attempts survive a restart
      // (without the result when that is too big for a KV value, or when the batch's kept results passed their
      // share of the commit: the run succeeded, its writes must land).
      if (result.attempts > 1 || keepAll) {
        const withResult = outcome.resultSize <= MAX_KEPT_RESULT && keptBytes + outcome.resultSize <= KEPT_PER_BATCH;
        if (withResult) keptBytes += outcome.resultSize;
        const kept = withResult ? result : { attempts: result.attempts, finishedAt: result.finishedAt };
        plan.sets.push({ key: keys.taskResult(job.taskId), value: kept, expireIn: this.options.resultTtlMs });
      }
      // Kept before the commit lands: `GET /tasks/:id` shows a result only once the cursor in KV is
      // past the task, and a reader may see that cursor before this lane hears its commit landed.
      this.results.set(job.taskId, result, outcome.resultSize);
      cursor = job.seq;
      done++;
    }
    return { ...this.#advance(st, plan, cursor), done };
  }

  /**
   * Adds a failed attempt of `job` to the plan (a new one by default): a retry record, or a dead letter and the
   * cursor past it. `cursor` and `done` are where the batch's successes before it left the lane; `permanent` fails
   * the same way every time, so it is dead at once.
   */
  #failure(
    st: LaneState,
    job: LaneJob,
    error: string,
    now: number,
    { plan = new WritePlan(), cursor = st.cursor, done = 0, permanent = false }: {
      plan?: WritePlan;
      cursor?: number;
      done?: number;
      permanent?: boolean;
    } = {},
  ): Settlement {
    const decision = afterFailure(st.retry, job, error, now, this.options.retry, permanent);
    if (decision.kind === "retry") {
      plan.sets.push({ key: keys.retry(st.lane.stream, st.lane.consumer), value: decision.state });
      if (cursor !== st.cursor) plan.sets.push({ key: keys.cursor(st.lane.stream, st.lane.consumer), value: cursor });
      return { plan, cursor, retry: decision.state, done, failed: true };
    }
    const dead: DeadLetter = withinValueLimit({
      taskId: job.taskId,
      stream: st.lane.stream,
      consumer: st.lane.consumer,
      seq: job.seq,
      ...("firstSeq" in job && job.firstSeq !== undefined ? { firstSeq: job.firstSeq } : {}),
      method: "method" in job ? job.method : "",
      params: "params" in job ? job.params : null,
      device: "device" in job ? job.device : null,
      ...("receivedAt" in job ? { receivedAt: job.receivedAt } : {}),
      ...("budget" in job && job.budget !== undefined ? { budget: job.budget } : {}),
      attempts: decision.attempts,
      errors: decision.errors,
      deadAt: now,
    });
    plan.sets.push({ key: keys.deadLetter(job.taskId), value: dead });
    const deadLine = `Task ${job.taskId} (${dead.method}) is dead after ${dead.attempts} attempt${
      dead.attempts === 1 ? "" : "s"
    }: ${redactTokens(error)}`;
    return { ...this.#advance(st, plan, job.seq), done, failed: true, dead: true, deadLine };
  }

  /** Moves the cursor to `cursor` in the plan, clearing a retry record it passed. */
  #advance(st: LaneState, plan: WritePlan, cursor: number): Pick<Settlement, "plan" | "cursor" | "retry"> {
    let retry = st.retry;
    if (retry && cursor >= retry.seq) {
      plan.deletes.push(keys.retry(st.lane.stream, st.lane.consumer));
      retry = null;
    }
    if (cursor !== st.cursor) plan.sets.push({ key: keys.cursor(st.lane.stream, st.lane.consumer), value: cursor });
    return { plan, cursor, retry };
  }

  /** KV takes writes again: lanes waiting out a stall (`#stall`) run now, not at their stall's end (up to 30 s). */
  resumeStalled(): void {
    for (const st of this.#lanes.values()) {
      if (st.stalledUntil === undefined) continue;
      st.stalledUntil = undefined;
      this.#wakeAt(st, 0);
    }
  }

  #wakeAt(st: LaneState, delayMs: number): void {
    clearTimeout(st.timer);
    st.timer = setTimeout(() => {
      st.timer = undefined;
      this.wake(st.lane);
    }, delayMs + 1);
  }

  #log(line: string): void {
    this.options.log?.(line);
  }
}

/** The events of `events` that follow `from` without a gap. */
export function unbroken(events: readonly StoredEvent[], from: number): StoredEvent[] {
  const out: StoredEvent[] = [];
  for (const e of events) {
    if (e.seq !== from + out.length) break;
    out.push(e);
  }
  return out;
}

function channelOfLane(lane: Lane): string {
  return lane.stream.startsWith(TASK_STREAM_PREFIX)
    ? channelOfTaskStream(lane.stream)
    : channelOfTopicStream(lane.stream);
}
