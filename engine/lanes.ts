import { describeError } from "../core/errors.ts";
import { positionalTaskId, subscriberRunId } from "../core/task_id.ts";
import { MESSAGE_PUBLISHED, type MessagePublishedData, TASK_QUEUED, type TaskQueuedData } from "../core/tasks.ts";
import { TASK_STREAM_PREFIX, TOPIC_STREAM_PREFIX } from "../core/streams.ts";
import type { StoredEvent } from "../store/event_store.ts";

/** A stream and one consumer of it, processed in order with its own cursor. */
export interface Lane {
  readonly stream: string;
  /** `tasks` for a task stream; `sub:<script>` for a script subscribed to a topic. */
  readonly consumer: string;
}

/** The consumer of every task stream. */
export const TASKS = "tasks";

/** The consumer name of a script subscribed to a topic. */
export function subscriberConsumer(script: string): string {
  return `sub:${script}`;
}

/** A stable string for a lane. */
export function laneKey(lane: Lane): string {
  return `${lane.consumer}|${lane.stream}`;
}

/** What one event of a lane asks to run. */
export interface Job {
  readonly seq: number;
  readonly taskId: string;
  readonly method: string;
  readonly params: unknown;
  readonly device: string | null;
  readonly receivedAt: number;
  /** A dead letter queued again: where it was first queued. */
  readonly firstSeq?: number;
  /** For work a script made: the script runs it may lead to, itself included (absent: `MAX_CHAIN_WORK`). */
  readonly budget?: number;
}

/** The job an event of a lane stands for, or an error for an event that cannot run. */
export function jobOf(lane: Lane, event: StoredEvent): Job | { seq: number; taskId: string; error: string } {
  try {
    if (lane.stream.startsWith(TASK_STREAM_PREFIX) && event.type === TASK_QUEUED) {
      const d = event.data as TaskQueuedData;
      const taskId = d.taskId ?? positionalTaskId(lane.stream, event.seq);
      const { method, params, device, receivedAt, firstSeq, budget } = d;
      return {
        seq: event.seq,
        taskId,
        method,
        params,
        device,
        receivedAt,
        ...(firstSeq ? { firstSeq } : {}),
        ...(budget !== undefined ? { budget } : {}),
      };
    }
    if (lane.stream.startsWith(TOPIC_STREAM_PREFIX) && event.type === MESSAGE_PUBLISHED) {
      const d = event.data as MessagePublishedData;
      const method = lane.consumer.slice("sub:".length);
      return {
        seq: event.seq,
        taskId: subscriberRunId(lane.stream, event.seq, method),
        method,
        params: d.message,
        device: d.sender.startsWith("_") ? null : d.sender,
        receivedAt: event.at,
        ...(d.budget !== undefined ? { budget: d.budget } : {}),
      };
    }
    return {
      seq: event.seq,
      taskId: positionalTaskId(lane.stream, event.seq),
      error: `Unexpected ${event.type} event`,
    };
  } catch (err) {
    return { seq: event.seq, taskId: positionalTaskId(lane.stream, event.seq), error: describeError(err) };
  }
}
