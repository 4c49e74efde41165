import type { ConfirmChannel, Message, Options } from "amqplib";
import { DEAD_LETTER_EXCHANGE } from "./topology.ts";
import { publishConfirmed } from "./confirm.ts";

/** Header that says why Sluice refused a message. */
export const REASON_HEADER = "sluice-reason";
/** Header with the refusal's error code (`malformed_json`, `unauthorized`, `not_found` …). */
export const CODE_HEADER = "sluice-code";

/**
 * Publishes a refused message, as it came, to `iot.dlx` with its reason, and resolves once the
 * broker confirmed it: only then may the original be acked.
 */
export function deadLetter(ch: ConfirmChannel, msg: Message, code: string, reason: string): Promise<void> {
  const p = msg.properties;
  const options: Options.Publish = {
    persistent: true,
    headers: { ...(p.headers ?? {}), [REASON_HEADER]: reason, [CODE_HEADER]: code },
    ...(p.contentType ? { contentType: p.contentType } : {}),
    ...(p.contentEncoding ? { contentEncoding: p.contentEncoding } : {}),
    ...(p.messageId !== undefined ? { messageId: String(p.messageId) } : {}),
    ...(p.correlationId ? { correlationId: p.correlationId } : {}),
    ...(p.timestamp ? { timestamp: p.timestamp } : {}),
    ...(p.type ? { type: p.type } : {}),
    ...(p.appId ? { appId: p.appId } : {}),
  };
  return publishConfirmed(ch, DEAD_LETTER_EXCHANGE, msg.fields.routingKey, msg.content, options);
}
