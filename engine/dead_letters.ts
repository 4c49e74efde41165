import type { AttemptError } from "../actors/task_stream/retry_policy.ts";
import { NotFoundError } from "../core/errors.ts";
import { TASK_STREAM_PREFIX, taskStream, TOPIC_STREAM_PREFIX } from "../core/streams.ts";
import { TASK_QUEUED, type TaskQueuedData } from "../core/tasks.ts";
import type { Committer } from "../store/committer.ts";
import { keys } from "../store/keys.ts";
import { kvPage } from "../store/kv_page.ts";

/** A task (or subscriber run) that failed every attempt. */
export interface DeadLetter {
  readonly taskId: string;
  readonly stream: string;
  readonly consumer: string;
  readonly seq: number;
  readonly method: string;
  readonly params: unknown;
  readonly device: string | null;
  readonly attempts: number;
  /** Every attempt's error, oldest first. */
  readonly errors: readonly AttemptError[];
  readonly deadAt: number;
}

/** The dead-letter list: read it, and send a dead task back to the tail of its stream. */
export class DeadLetters {
  constructor(private readonly kv: Deno.Kv, private readonly committer: Committer) {}

  /** Dead letters by task id, at most `limit`, after the task id `after`; `next` pages on (null at the end). */
  async list(limit = 100, after?: string): Promise<{ deadLetters: DeadLetter[]; next: string | null }> {
    const page = await kvPage<DeadLetter>(this.kv, keys.deadLetters(), limit, after);
    return { deadLetters: page.values, next: page.more ? page.values.at(-1)!.taskId : null };
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
    const dead = entry.value;
    if (!dead) throw new NotFoundError(`No dead letter with id "${taskId}"`);
    const stream = dead.stream.startsWith(TASK_STREAM_PREFIX)
      ? dead.stream
      : taskStream(dead.stream.slice(TOPIC_STREAM_PREFIX.length), "_retry");
    const data: TaskQueuedData = {
      method: dead.method,
      params: dead.params,
      device: dead.device,
      taskId,
      receivedAt: Date.now(),
      protocol: "http",
    };
    const res = await this.committer.write({
      urgent: true,
      appends: [{ stream, event: { type: TASK_QUEUED, data } }],
      sets: [{ key: keys.taskIndex(taskId), derive: (p) => p[0] }],
      deletes: [keys.deadLetter(taskId), keys.taskResult(taskId)],
      // Two retries of one dead letter: only the first lands.
      checks: [{ key: keys.deadLetter(taskId), versionstamp: entry.versionstamp }],
      wake: [stream],
    });
    return { taskId, stream, seq: res.positions[0]!.seq };
  }
}
