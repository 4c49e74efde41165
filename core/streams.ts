/** Stream ids: one log per task partition, per pump and per topic. */

/** The log of tasks queued on a channel partition (a device, the channel, or a shard). */
export function taskStream(channel: string, partition: string): string {
  return `t/${channel}/${partition}`;
}

/** The event log of one pump. */
export function pumpStream(pumpId: string): string {
  return `p/${pumpId}`;
}

/** The durable message log of a channel used as a topic. */
export function topicStream(channel: string): string {
  return `m/${channel}`;
}

/** Prefix shared by every task stream id (for sweeps). */
export const TASK_STREAM_PREFIX = "t/";
/** Prefix shared by every pump stream id. */
export const PUMP_STREAM_PREFIX = "p/";
/** Prefix shared by every topic stream id. */
export const TOPIC_STREAM_PREFIX = "m/";

/** The channel of a task stream id. */
export function channelOfTaskStream(stream: string): string {
  return stream.split("/")[1] ?? "";
}

/** The channel of a topic stream id. */
export function channelOfTopicStream(stream: string): string {
  return stream.slice(TOPIC_STREAM_PREFIX.length);
}
