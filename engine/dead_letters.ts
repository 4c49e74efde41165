import { valueSize } from "../core/kv_size.ts";
import type { AttemptError } from "../actors/task_stream/retry_policy.ts";
import { NotFoundError } from "../core/errors.ts";
import { positionOfTaskId, subscriberRunOf } from "../core/task_id.ts";
import { TASK_STREAM_PREFIX, taskStream, TOPIC_STREAM_PREFIX } from "../core/streams.ts";
import { TASK_QUEUED, type TaskQueuedData } from "../core/tasks.ts";
import type { Committer } from "../store/committer.ts";
import { keys } from "../store/keys.ts";
import { chunked, KV_LIMITS } from "../store/kv_limits.ts";

/** A task (or subscriber run) that failed every attempt. */
export interface DeadLetter {
  readonly taskId: string;
  readonly stream: string;
  readonly consumer: string;
  readonly seq: number;
  /** Where it was first queued, when it died after a retry from the dead letters (`seq` is where it died). */
  readonly firstSeq?: number;
  readonly method: string;
  readonly params: unknown;
  readonly device: string | null;
  /** When Sluice received the message (ms): a retry runs it as received then (absent in letters before 2026-11-27). */
  readonly receivedAt?: number;
  /** For work a script made, what it may lead to (see `MAX_CHAIN_WORK`): a retry keeps it, so a loop's task stays one. */
  readonly budget?: number;
  readonly attempts: number;
  /** Every attempt's error, oldest first. */
  readonly errors: readonly AttemptError[];
  readonly deadAt: number;
}

/** A dead letter's largest size as KV stores it: a KV value (64 KiB) with room to spare. */
export const DEAD_LETTER_BYTES = 62 * 1024;

/**
 * A dead letter KV can hold: without its oldest errors, then with the last one cut, while it would
 * pass DEAD_LETTER_BYTES. The params stay whole (a retry queues them again); they are at most a
 * message's size. Without this, a task with big params and long errors could not be recorded dead,
 * and its lane stalled for good.
 */
export function withinValueLimit(dead: DeadLetter): DeadLetter {
  let d = dead;
  while (d.errors.length > 1 && valueSize(d) > DEAD_LETTER_BYTES) d = { ...d, errors: d.errors.slice(1) };
  const over = valueSize(d) - DEAD_LETTER_BYTES;
  const last = d.errors[0];
  if (over > 0 && last) {
    d = { ...d, errors: [{ ...last, error: `${last.error.slice(0, Math.max(0, last.error.length - over - 1))}…` }] };
  }
  return d;
}

/**
 * Which dead letters to retry: those of a channel, a script, a device (every one given must match),
 * dead before a time (ms): a bulk retry's later calls pass its first one's, so that the tasks that
 * died again meanwhile are not taken again and again while the others wait. Without it: every one
 * dead until now, and those stamped later by a clock that was ahead.
 */
export interface DeadLetterFilter {
  readonly channel?: string;
  readonly method?: string;
  readonly device?: string;
  readonly before?: number;
}

function matches(d: DeadLetter, f: DeadLetterFilter): boolean {
  return (f.before === undefined || d.deadAt < f.before) &&
    (f.channel === undefined || d.stream.split("/")[1] === f.channel) &&
    (f.method === undefined || d.method === f.method) &&
    (f.device === undefined || d.device === f.device);
}

/** Dead letters a bulk retry or discard reads and lands at once (see `#inParts`). */
const PART = 50;

/** A dead letter a bulk retry or discard took, as it was when taken. */
interface Chosen {
  readonly taskId: string;
  readonly versionstamp: string;
}

/** The dead-letter list: read it, and send a dead task back to the tail of its stream. */
export class DeadLetters {
  constructor(
    private readonly kv: Deno.Kv,
    private readonly committer: Committer,
    /** How long a task queued again (and its id's index key) is kept (undefined: for good). */
    private readonly taskRetentionMs?: number,
  ) {}

  /**
   * Dead letters by task id, at most `limit`, after the task id `after`, those `filter` takes; `next` pages on (null
   * at the end).
   */
  async list(
    limit = 100,
    after?: string,
    filter: DeadLetterFilter = {},
  ): Promise<{ deadLetters: DeadLetter[]; next: string | null }> {
    const prefix = keys.deadLetters();
    const selector = after === undefined ? { prefix } : { prefix, start: [...prefix, after, ""] };
    // Unfiltered, the page and one more (to know whether another follows) is all there is to read: one batch, or two
    // for a page of 1,000 (a KV read takes at most 1,000 entries).
    const batchSize = Object.values(filter).every((v) => v === undefined)
      ? Math.min(limit + 1, KV_LIMITS.readEntries)
      : 500;
    const deadLetters: DeadLetter[] = [];
    for await (const { value: d } of this.kv.list<DeadLetter>(selector, { batchSize })) {
      if (!matches(d, filter)) continue;
      if (deadLetters.length === limit) return { deadLetters, next: deadLetters.at(-1)!.taskId };
      deadLetters.push(d);
    }
    return { deadLetters, next: null };
  }

  async get(taskId: string): Promise<DeadLetter | null> {
    return (await this.kv.get<DeadLetter>(keys.deadLetter(taskId))).value;
  }

  /**
   * Appends the task again at the tail of its stream, keeping its id (a subscriber run goes to
   * its channel's `_retry` task stream). Returns where it went.
   */
  async retry(taskId: string): Promise<{ taskId: string; stream: string; seq: number }> {
    const entry = await this.kv.get<DeadLetter>(keys.deadLetter(taskId));
    if (!entry.value) throw new NotFoundError(`No dead letter with id "${taskId}"`);
    return await this.#requeue(entry.value, entry.versionstamp, true);
  }

  /**
   * Retries the dead letters that match `filter`, at most `limit` of them, whole streams first; a
   * stream's are queued in the order they were first queued. `left` counts the matching ones not
   * retried by this call (another call takes them).
   */
  async retryMatching(
    filter: DeadLetterFilter,
    limit: number,
    now: number,
  ): Promise<{ retried: number; left: number; before: number }> {
    const { chosen, left } = await this.#matching(filter, limit);
    // The next calls take those dead before now: not one a clock that was ahead stamped later (this call
    // took it), nor those that die again meanwhile, which `before` is there to leave alone.
    const before = filter.before ?? now;
    // Queued in order (the committer gives a stream's seqs in the order of the writes), as background work: the
    // devices' messages keep their place in the commits.
    const retried = await this.#inParts(chosen, (e) => this.#requeue(e.value, e.versionstamp, false));
    return { retried, left: left + chosen.length - retried, before };
  }

  /**
   * Discards the dead letters that match `filter`, at most `limit` of them (as `retryMatching` picks them); `left`
   * counts the matching ones this call left.
   */
  async discardMatching(
    filter: DeadLetterFilter,
    limit: number,
    now: number,
  ): Promise<{ discarded: number; left: number; before: number }> {
    const { chosen, left } = await this.#matching(filter, limit);
    const discarded = await this.#inParts(chosen, (e) => this.#discard(e));
    return { discarded, left: left + chosen.length - discarded, before: filter.before ?? now };
  }

  /** Takes a dead letter off the list without running it again (its task stays `dead`). */
  async discard(taskId: string): Promise<void> {
    const entry = await this.kv.get<DeadLetter>(keys.deadLetter(taskId));
    if (!entry.value) throw new NotFoundError(`No dead letter with id "${taskId}"`);
    await this.#discard(entry as Deno.KvEntry<DeadLetter>);
  }

  /** Keeps what `GET /tasks/:id` shows of a discarded task (not its params, which may be big). */
  async #discard(entry: Deno.KvEntry<DeadLetter>): Promise<void> {
    const taskId = entry.value.taskId;
    await this.committer.write({
      sets: [{ key: keys.discarded(taskId), value: { ...entry.value, params: null } }],
      deletes: [keys.deadLetter(taskId)],
      checks: [{ key: keys.deadLetter(taskId), versionstamp: entry.versionstamp }],
    });
  }

  /**
   * Does `act` with the dead letters `chosen` names, in order, a part at a time (`PART` letters, each part read and
   * landed before the next is read): thousands of letters of up to 62 KiB each never go to KV at once, which would
   * hold its one thread, and the devices' acks, for seconds. A letter that changed since it was chosen (retried
   * meanwhile, and dead again) is left for another call. How many were done.
   */
  async #inParts(chosen: readonly Chosen[], act: (e: Deno.KvEntry<DeadLetter>) => Promise<unknown>): Promise<number> {
    let done = 0;
    for (let i = 0; i < chosen.length; i += PART) {
      const part = chosen.slice(i, i + PART);
      const read = chunked(part).map((c) => this.kv.getMany<DeadLetter[]>(c.map((l) => keys.deadLetter(l.taskId))));
      const entries = (await Promise.all(read)).flat();
      const outcomes = await Promise.allSettled(
        entries.flatMap((e, j) => e.versionstamp !== part[j]!.versionstamp ? [] : [act(e as Deno.KvEntry<DeadLetter>)]),
      );
      done += outcomes.filter((o) => o.status === "fulfilled").length;
    }
    return done;
  }

  /**
   * The matching dead letters to retry now (each with its versionstamp when read): whole streams while they fit in
   * `limit` (a stream with more gives its oldest `limit`), each stream's in seq order; and how many
   * match besides. (A task a script queued has a random id, so a stream's are not side by side.)
   */
  async #matching(
    filter: DeadLetterFilter,
    limit: number,
  ): Promise<{ chosen: Chosen[]; left: number }> {
    const streams = new Map<string, (Chosen & { seq: number })[]>();
    let matching = 0;
    // Small batches: each list call holds KV's one thread for a while (a letter may be 62 KiB); commits go between.
    const all = this.kv.list<DeadLetter>({ prefix: keys.deadLetters() }, { batchSize: 50 });
    for await (const { value: d, versionstamp } of all) {
      if (!matches(d, filter)) continue;
      const lane = `${d.stream}\0${d.consumer}`;
      const list = streams.get(lane) ?? [];
      if (list.length === 0) streams.set(lane, list);
      list.push({ taskId: d.taskId, versionstamp, seq: firstSeq(d) });
      matching++;
    }
    const chosen: Chosen[] = [];
    for (const list of streams.values()) {
      if (chosen.length > 0 && chosen.length + list.length > limit) continue;
      list.sort((a, b) => a.seq - b.seq);
      chosen.push(...list.slice(0, limit));
    }
    return { chosen, left: matching - chosen.length };
  }

  async #requeue(
    dead: DeadLetter,
    versionstamp: string,
    urgent: boolean,
  ): Promise<{ taskId: string; stream: string; seq: number }> {
    const taskId = dead.taskId;
    const stream = dead.stream.startsWith(TASK_STREAM_PREFIX)
      ? dead.stream
      : taskStream(dead.stream.slice(TOPIC_STREAM_PREFIX.length), "_retry");
    const data: TaskQueuedData = {
      method: dead.method,
      params: dead.params,
      device: dead.device,
      taskId,
      firstSeq: firstSeq(dead),
      receivedAt: dead.receivedAt ?? dead.deadAt,
      protocol: "http",
      ...(dead.budget !== undefined ? { budget: dead.budget } : {}),
    };
    const res = await this.committer.write({
      urgent,
      appends: [{ stream, event: { type: TASK_QUEUED, data } }],
      sets: [{ key: keys.taskIndex(taskId), derive: (p) => p[0], expireIn: this.taskRetentionMs }],
      deletes: [keys.deadLetter(taskId), keys.taskResult(taskId)],
      // Two retries of one dead letter: only the first lands.
      checks: [{ key: keys.deadLetter(taskId), versionstamp }],
      wake: [stream],
    });
    return { taskId, stream, seq: res.positions[0]!.seq };
  }
}

/**
 * Where a dead task was first queued in its stream: a retried one died again further on, but goes
 * back in its first place (kept from its first retry on; else its id says it: a topic message's
 * run by its message, wherever it died; for a task a script queued, with a random id, where it died).
 */
function firstSeq(d: DeadLetter): number {
  if (d.firstSeq !== undefined) return d.firstSeq;
  const run = subscriberRunOf(d.taskId);
  if (run) return run.seq;
  const first = positionOfTaskId(d.taskId);
  return first?.stream === d.stream ? first.seq : d.seq;
}
