import type { Protocol } from "./envelope.ts";

/** The event that puts a task in a stream. */
export interface TaskQueuedData {
  readonly method: string;
  readonly params: unknown;
  /** The device the task runs for (null: admin or anonymous sender). */
  readonly device: string | null;
  /** Set when the id is not derived from the position (script-queued, retried dead letter). */
  readonly taskId?: string;
  /** A dead letter queued again: where it was first queued (a bulk retry queues a stream's in that order). */
  readonly firstSeq?: number;
  readonly receivedAt: number;
  readonly protocol: Protocol;
  /** For a task a script queued: the script runs it may lead to, itself included (see `MAX_CHAIN_WORK`). */
  readonly budget?: number;
}

export const TASK_QUEUED = "TaskQueued";

/** A message published on a topic. */
export interface MessagePublishedData {
  readonly message: unknown;
  readonly sender: string;
  readonly protocol: Protocol;
  /** For a message a script published: the runs each subscriber's run of it may lead to, as a task's. */
  readonly budget?: number;
}

export const MESSAGE_PUBLISHED = "MessagePublished";

/** Task statuses, as `GET /tasks/:id` shows them. */
export type TaskStatus = "queued" | "running" | "retrying" | "done" | "dead";

/** Shards of a channel with `ordering: none`. */
export const UNORDERED_SHARDS = 8;

let roundRobin = 0;

/** The partition a task goes to: its device's, the channel's single one, or any shard. */
export function partitionOf(ordering: "device" | "channel" | "none", device: string | null): string {
  switch (ordering) {
    case "device":
      return device ?? "_";
    case "channel":
      return "_";
    case "none":
      return `_${(roundRobin = (roundRobin + 1) % UNORDERED_SHARDS)}`;
    default: {
      const never: never = ordering;
      throw new Error(`Unknown ordering ${never}`);
    }
  }
}
