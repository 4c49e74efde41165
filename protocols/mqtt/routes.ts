import { CHANNEL_NAME, looksLikeToken } from "../../core/names.ts";

/** A publish topic Sluice understands: `[<token>/]<channel>/invoke|messages`. */
export interface PublishRoute {
  /** The device token carried in the topic, if any. Never log it. */
  readonly token?: string;
  readonly channel: string;
  readonly kind: "invoke" | "message";
}

const KINDS: Readonly<Record<string, PublishRoute["kind"]>> = { invoke: "invoke", messages: "message" };

/**
 * Parses a publish topic. `null` means it is not a Sluice route at all (wrong shape, invalid or
 * token-like channel name): the session may not publish there.
 */
export function parsePublishTopic(topic: string): PublishRoute | null {
  const parts = topic.split("/");
  if (parts.length !== 2 && parts.length !== 3) return null;
  const kind = KINDS[parts[parts.length - 1]!];
  const channel = parts[parts.length - 2]!;
  if (!kind || !CHANNEL_NAME.test(channel) || looksLikeToken(channel)) return null;
  if (parts.length === 2) return { channel, kind };
  const token = parts[0]!;
  if (token === "") return null;
  return { token, channel, kind };
}

/**
 * The channel of a subscription filter: only `<channel>/messages`, no wildcard and no token
 * level. `null` for anything else.
 */
export function parseSubscribeTopic(filter: string): string | null {
  const parts = filter.split("/");
  if (parts.length !== 2 || parts[1] !== "messages") return null;
  const channel = parts[0]!;
  if (!CHANNEL_NAME.test(channel) || looksLikeToken(channel)) return null;
  return channel;
}

/** The topic Sluice re-publishes a channel's messages on. */
export function messagesTopic(channel: string): string {
  return `${channel}/messages`;
}
