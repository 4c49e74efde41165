import type { ConfirmChannel, Options } from "amqplib";
import type { TopicMessage } from "../../engine/topic_hub.ts";
import type { Publish } from "../republisher.ts";
import { publishConfirmed } from "./confirm.ts";
import { BROADCAST_EXCHANGE } from "./topology.ts";

/** The AMQP form of a topic message: text as text, anything else as JSON. */
export function encodeTopicMessage(m: TopicMessage): { content: Uint8Array; options: Options.Publish } {
  const text = typeof m.message === "string";
  return {
    content: new TextEncoder().encode(text ? m.message as string : JSON.stringify(m.message)),
    options: {
      persistent: true,
      contentType: text ? "text/plain" : "application/json",
      messageId: `${m.channel}/${m.seq}`,
      timestamp: Math.floor(m.at / 1000),
      headers: { "sluice-seq": m.seq, "sluice-sender": m.sender },
    },
  };
}

/** Re-publishes topic messages to `iot.broadcast` (routing key = channel) on a confirm channel. */
export function broadcastOn(ch: ConfirmChannel): Publish {
  return (m) => {
    const { content, options } = encodeTopicMessage(m);
    return publishConfirmed(ch, BROADCAST_EXCHANGE, m.channel, content, options);
  };
}
