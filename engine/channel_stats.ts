import { taskStream, topicStream } from "../core/streams.ts";
import { headFrom, trueHead } from "../store/heads.ts";
import { keys } from "../store/keys.ts";

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
}

/** Counts a channel's queue depth from its task streams' heads and cursors. */
export async function channelStats(kv: Deno.Kv, channel: string): Promise<ChannelStats> {
  const prefix = taskStream(channel, "");
  const range = (key: (s: string) => Deno.KvKey) => ({ start: key(prefix), end: key(prefix.slice(0, -1) + "0") });
  const heads = new Map<string, number>();
  for await (const e of kv.list<number>(range((s) => keys.head(s)))) heads.set(e.key[1] as string, e.value);
  let queued = 0;
  const cursors = new Map<string, number>();
  for await (const e of kv.list<number>(range((s) => keys.cursor(s)))) cursors.set(e.key[2] as string, e.value);
  for (const [stream, hinted] of heads) {
    queued += Math.max(0, (await headFrom(kv, stream, hinted)) - (cursors.get(stream) ?? 0));
  }
  let retrying = 0;
  for await (const _ of kv.list(range((s) => keys.retry(s)))) retrying++;
  const messages = await trueHead(kv, topicStream(channel));
  return { channel, partitions: heads.size, queued, retrying, messages };
}
