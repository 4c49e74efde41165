import { NotFoundError } from "../core/errors.ts";
import { positionOfTaskId, subscriberRunOf } from "../core/task_id.ts";
import type { MessagePublishedData, TaskQueuedData, TaskStatus } from "../core/tasks.ts";
import { keys } from "../store/keys.ts";
import type { RetryState } from "../actors/task_stream/retry_policy.ts";
import type { DeadLetter } from "./dead_letters.ts";
import { subscriberConsumer, TASKS } from "./lanes.ts";
import type { PurgedRange, TaskResult } from "./partition_runner.ts";

/** What `GET /tasks/:id` shows. */
export interface TaskView {
  readonly id: string;
  readonly status: TaskStatus;
  readonly attempts: number;
  readonly method: string;
  readonly device: string | null;
  readonly result?: unknown;
  readonly error?: string;
  readonly errors?: readonly { attempt: number; at: string; error: string }[];
  /** A dead task the admin discarded (no longer among the dead letters). */
  readonly discarded?: true;
  /** A retrying task's next attempt (ISO time). */
  readonly nextAttemptAt?: string;
}

/**
 * Derives a task's status from where it sits: past the cursor it is done (or dead, when a dead
 * letter says so); before it, queued, running or waiting for a retry. A subscriber script's run
 * for a topic message (an id `s.…`, as its dead letter gives) sits in the topic, before or past
 * that script's cursor.
 */
export async function taskStatus(
  kv: Deno.Kv,
  taskId: string,
  /** Where the task is in the batch its lane runs now (`running`, or `waiting` for the runs before it). */
  inBatch: (stream: string, seq: number, consumer: string) => "running" | "waiting" | null,
  recent: (taskId: string) => TaskResult | undefined = () => undefined,
  /** An event acked but not yet at its stream's key (the single writer's inbox). */
  unmoved: (stream: string, seq: number) => { readonly data: unknown } | undefined = () => undefined,
  /** Whether a script still subscribes to a topic stream's channel (unknown: assumed so). */
  subscribes: (stream: string, script: string) => Promise<boolean> = () => Promise.resolve(true),
): Promise<TaskView> {
  // A task queued again from the dead letters (a subscriber run's too) is followed where it went.
  const indexed = (await kv.get<{ stream: string; seq: number }>(keys.taskIndex(taskId))).value;
  const run = indexed ? null : subscriberRunOf(taskId);
  const position = indexed ?? run ?? positionOfTaskId(taskId);
  if (!position) throw new NotFoundError(`No task with id "${taskId}"`);
  const { stream, seq } = position;
  const consumer = run ? subscriberConsumer(run.script) : TASKS;
  const [event, cursor, retry, dead, result, discarded, from, purged] = await kv.getMany<
    [{ data: unknown }, number, RetryState, DeadLetter, TaskResult, DeadLetter, number, PurgedRange[]]
  >([
    keys.event(stream, seq),
    keys.cursor(stream, consumer),
    keys.retry(stream, consumer),
    keys.deadLetter(taskId),
    keys.taskResult(taskId),
    keys.discarded(taskId),
    keys.subscribedFrom(stream, consumer),
    keys.purged(stream, consumer),
  ]);
  const data = (event.value ?? unmoved(stream, seq))?.data;
  const d = dead.value ?? discarded.value;
  // A dead run's topic message may have expired (TOPIC_RETENTION): its dead letter still says what it was.
  const base = (run ? runBase(taskId, run.script, data) : taskBase(taskId, data)) ??
    (d ? { id: taskId, method: d.method, device: d.device } : null);
  // A run of a script that never followed the topic (no cursor of its own), or of a message published
  // before the script was (last) added, is no run at all.
  const unknownRun = run && !d && (cursor.versionstamp === null || seq < (from.value ?? 1));
  if (!base || unknownRun) throw new NotFoundError(`No task with id "${taskId}"`);
  const errors = (list: RetryState["errors"]) =>
    list.map((e) => ({ attempt: e.attempt, at: new Date(e.at).toISOString(), error: e.error }));
  if (d) {
    return {
      ...base,
      status: "dead",
      attempts: d.attempts,
      error: d.errors.at(-1)?.error,
      errors: errors(d.errors),
      ...(dead.value ? {} : { discarded: true as const }),
    };
  }
  const dropped = purged.value?.find((r) => r.from <= seq && seq <= r.to);
  if (dropped && (cursor.value ?? 0) >= seq) {
    const at = new Date(dropped.at).toISOString();
    return {
      ...base,
      status: "dead",
      attempts: 0,
      error: `Dropped by a purge of its channel at ${at}`,
      discarded: true,
    };
  }
  if ((cursor.value ?? 0) >= seq) {
    // Results are kept in memory for recent tasks; a task that took retries has its record in KV.
    // (A record kept without its result, too big for KV, leaves it to the memory's copy.)
    const done = result.value ?? recent(taskId);
    const shown = done && "result" in done ? done : recent(taskId);
    return { ...base, status: "done", attempts: done?.attempts ?? 1, ...(shown ? { result: shown.result } : {}) };
  }
  // A run not done of a script removed from its channel (or of a deleted channel) will not happen.
  const batch = inBatch(stream, seq, consumer);
  if (run && !batch && !(await subscribes(stream, run.script))) {
    throw new RunNotHappening(
      base.device,
      `Run ${taskId} will not happen: script "${run.script}" no longer subscribes to its channel (it ran up to ` +
        `message ${cursor.value ?? 0})`,
    );
  }
  if (batch === "running") {
    const attempts = retry.value?.seq === seq ? retry.value.attempts : 0;
    return { ...base, status: "running", attempts };
  }
  if (retry.value?.seq === seq) {
    const r = retry.value;
    return {
      ...base,
      status: "retrying",
      attempts: r.attempts,
      error: r.errors.at(-1)?.error,
      errors: errors(r.errors),
      nextAttemptAt: new Date(r.nextAt).toISOString(),
    };
  }
  return { ...base, status: "queued", attempts: 0 };
}

type Base = Pick<TaskView, "id" | "method" | "device">;

/** A run of a subscriber script that will not happen (the script or its channel is gone): whose it was is known. */
export class RunNotHappening extends NotFoundError {
  constructor(readonly device: string | null, message: string) {
    super(message);
  }
}

/** A queued task's id, script and device, from its event (null when the event is another task's). */
function taskBase(taskId: string, data: unknown): Base | null {
  const task = data as TaskQueuedData | undefined;
  if (!task || (task.taskId ?? taskId) !== taskId) return null;
  return { id: taskId, method: task.method, device: task.device };
}

/** A subscriber run's script and device (the message's sender), from its topic message. */
function runBase(taskId: string, script: string, data: unknown): Base | null {
  const message = data as MessagePublishedData | undefined;
  if (!message) return null;
  return { id: taskId, method: script, device: message.sender.startsWith("_") ? null : message.sender };
}
