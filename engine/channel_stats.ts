import { channelOfTaskStream, TASK_STREAM_PREFIX, taskStream, topicStream } from "../core/streams.ts";
import { trueHead } from "../store/heads.ts";
import { keys } from "../store/keys.ts";
import type { RetryState } from "../actors/task_stream/retry_policy.ts";
import { subscriberConsumer } from "./lanes.ts";

/** How much work a channel has: queued tasks over its partitions, retries, topic length. */
export interface ChannelStats {
  readonly channel: string;
  /** Task partitions (streams) the channel has. */
  readonly partitions: number;
  /** Tasks appended and not yet done or dead. */
  readonly queued: number;
  /** Partitions waiting for a retry of their head task. */
  readonly retrying: number;
  /** Seq of the topic's last message. */
  readonly messages: number;
  /** Each subscriber script's progress through the topic. */
  readonly subscribers: readonly SubscriberProgress[];
}

/** How far a subscriber script is: messages run (or dead), messages left, a retry under way. */
export interface SubscriberProgress {
  readonly script: string;
  /** Seq of the last message it is done with. */
  readonly done: number;
  readonly behind: number;
  /** Its next message failed and waits for another attempt: when, and why. */
  readonly retrying: { readonly seq: number; readonly nextAttemptAt: string; readonly error?: string } | null;
}

/**
 * A stream's head for counting: what the writer knows in memory, else its head key (written
 * lazily by one writer, at most a second behind). Counting never reads a stream's events.
 */
export type HeadOf = (stream: string, headKey: number) => number;

/** A channel's task partitions with work left: stream → [cursor, head]. */
export interface QueueDepth {
  readonly partitions: number;
  readonly queued: number;
  readonly behind: ReadonlyMap<string, readonly [cursor: number, head: number]>;
}

/** Counts a channel's queued tasks from its task streams' head and cursor keys (two range reads). */
export async function queueDepth(kv: Deno.Kv, channel: string, headOf: HeadOf): Promise<QueueDepth> {
  return (await queueDepths(kv, headOf, taskStream(channel, ""))).get(channel) ?? EMPTY;
}

/**
 * The queue depth of every channel with task streams under `prefix` (all by default): those of a channel deleted
 * with tasks left too, which still run. Two range reads.
 */
export async function queueDepths(
  kv: Deno.Kv,
  headOf: HeadOf,
  prefix = TASK_STREAM_PREFIX,
): Promise<Map<string, QueueDepth>> {
  const range = (key: (s: string) => Deno.KvKey) => ({ start: key(prefix), end: key(prefix.slice(0, -1) + "0") });
  const cursors = new Map<string, number>();
  for await (const e of kv.list<number>(range((s) => keys.cursor(s)))) cursors.set(e.key[2] as string, e.value);
  const depths = new Map<string, { partitions: number; queued: number; behind: Map<string, [number, number]> }>();
  for await (const e of kv.list<number>(range((s) => keys.head(s)))) {
    const stream = e.key[1] as string;
    const channel = channelOfTaskStream(stream);
    let depth = depths.get(channel);
    if (!depth) depths.set(channel, depth = { partitions: 0, queued: 0, behind: new Map() });
    const cursor = cursors.get(stream) ?? 0, head = headOf(stream, e.value);
    depth.partitions++;
    if (head <= cursor) continue;
    depth.queued += head - cursor;
    depth.behind.set(stream, [cursor, head]);
  }
  return depths;
}

const EMPTY: QueueDepth = { partitions: 0, queued: 0, behind: new Map() };

/** A channel's queue depth, retries, topic length and its subscriber scripts' progress. */
export async function channelStats(
  kv: Deno.Kv,
  channel: string,
  headOf: HeadOf,
  subscribers: readonly string[],
): Promise<ChannelStats> {
  const { partitions, queued } = await queueDepth(kv, channel, headOf);
  const prefix = taskStream(channel, "");
  let retrying = 0;
  for await (const _ of kv.list({ start: keys.retry(prefix), end: keys.retry(prefix.slice(0, -1) + "0") })) retrying++;
  const topic = topicStream(channel);
  const messages = headOf(topic, await trueHead(kv, topic));
  const progress = await Promise.all(subscribers.map(async (script): Promise<SubscriberProgress> => {
    const consumer = subscriberConsumer(script);
    const [cursor, retry] = await kv.getMany<[number, RetryState]>([
      keys.cursor(topic, consumer),
      keys.retry(topic, consumer),
    ]);
    const done = cursor.value ?? 0, r = retry.value;
    return {
      script,
      done,
      behind: Math.max(0, messages - done),
      retrying: r
        ? { seq: r.seq, nextAttemptAt: new Date(r.nextAt).toISOString(), error: r.errors.at(-1)?.error }
        : null,
    };
  }));
  return { channel, partitions, queued, retrying, messages, subscribers: progress };
}
