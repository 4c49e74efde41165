import type { ConfirmChannel, Message, Options } from "amqplib";
import { DEAD_LETTER_EXCHANGE } from "./topology.ts";
import { publishConfirmed } from "./confirm.ts";
import { utf8Length } from "../../core/kv_size.ts";

/** Header that says why Sluice refused a message. */
export const REASON_HEADER = "sluice-reason";
/** Header with the refusal's error code (`malformed_json`, `unauthorized`, `not_found` …). */
export const CODE_HEADER = "sluice-code";

/** Header that replaces the message's own headers when they were too big to copy. */
export const DROPPED_HEADER = "sluice-headers-dropped";
/**
 * The message's own headers are copied up to this size (JSON, in UTF-8 bytes): amqplib encodes a header table in
 * 64 KiB, and a refused message whose copy could not be encoded was retried for good, its device's later messages
 * waiting behind it.
 */
const COPIED_HEADERS_MAX = 32 * 1024;

/**
 * Publishes a refused message, as it came (its headers too, unless too big), to `iot.dlx` with its
 * reason, and resolves once the broker confirmed it: only then may the original be acked.
 */
export async function deadLetter(ch: ConfirmChannel, msg: Message, code: string, reason: string): Promise<void> {
  const own = msg.properties.headers ?? {};
  const size = jsonBytes(own);
  const send = (headers: Record<string, unknown>) =>
    publishConfirmed(ch, DEAD_LETTER_EXCHANGE, msg.fields.routingKey, msg.content, options(msg, code, reason, headers));
  const dropped = { [DROPPED_HEADER]: `${size} bytes of headers, too big to copy` };
  if (size > COPIED_HEADERS_MAX) return await send(dropped);
  try {
    await send(own);
  } catch (err) {
    // A table small as JSON can still be too big as AMQP encodes it (every number takes 9 bytes): amqplib
    // refuses it before sending (a RangeError), the same way every time.
    if (!(err instanceof RangeError)) throw err;
    await send(dropped);
  }
}

function options(msg: Message, code: string, reason: string, headers: Record<string, unknown>): Options.Publish {
  const p = msg.properties;
  return {
    persistent: true,
    headers: { ...headers, [REASON_HEADER]: reason, [CODE_HEADER]: code },
    ...(p.contentType ? { contentType: p.contentType } : {}),
    ...(p.contentEncoding ? { contentEncoding: p.contentEncoding } : {}),
    ...(p.messageId !== undefined ? { messageId: String(p.messageId) } : {}),
    ...(p.correlationId ? { correlationId: p.correlationId } : {}),
    ...(p.timestamp ? { timestamp: p.timestamp } : {}),
    ...(p.type ? { type: p.type } : {}),
    ...(p.appId ? { appId: p.appId } : {}),
  };
}

function jsonBytes(v: unknown): number {
  try {
    return utf8Length(JSON.stringify(v, (_k, x) => typeof x === "bigint" ? String(x) : x) ?? "");
  } catch {
    return Infinity;
  }
}
