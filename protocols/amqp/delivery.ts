import { MalformedJsonError, PayloadTooLargeError, ValidationError } from "../../core/errors.ts";
import { parseMessageId } from "../../core/invoke_body.ts";
import { parseRoute, type Route } from "./routing_key.ts";
import { checkJson } from "../../core/json_check.ts";

/** The parts of an AMQP delivery Sluice reads. */
export interface RawDelivery {
  readonly routingKey: string;
  readonly content: Uint8Array;
  readonly contentType?: string;
  readonly messageId?: unknown;
  readonly headers?: Record<string, unknown>;
}

/** A delivery read into envelope fields; only the principal is left to resolve. */
export interface DecodedDelivery extends Route {
  readonly body: unknown;
  /** An invoke body kept as text because it did not parse as JSON (no `text/*` content type). */
  readonly unparsedText: boolean;
  readonly id?: string;
}

/** The header that may carry the device token when the routing key does not. */
export const TOKEN_HEADER = "sluice-token";

/**
 * Reads a delivery: route from the routing key (and `sluice-token`), id from `messageId`, body as
 * for MQTT. An invoke body is JSON (`{method, params}` …) or a bare CSV string; `application/json`
 * makes JSON required, `text/*` makes it text. A topic message is JSON when it parses, else text.
 */
export function decodeDelivery(d: RawDelivery, maxBytes: number): DecodedDelivery {
  const route = parseRoute(d.routingKey, headerToken(d.headers?.[TOKEN_HEADER]));
  const id = parseMessageId(d.messageId);
  if (d.content.byteLength > maxBytes) {
    throw new PayloadTooLargeError(`Message is ${d.content.byteLength} bytes, over the limit of ${maxBytes}`);
  }
  const text = utf8(d.content);
  const { body, unparsedText } = route.kind === "invoke"
    ? invokeBody(text, mediaType(d.contentType))
    : { body: messageBody(text, d.contentType), unparsedText: false };
  return { ...route, body, unparsedText, ...(id === undefined ? {} : { id }) };
}

function headerToken(v: unknown): string | undefined {
  if (v === undefined || v === null || v === "") return undefined;
  if (typeof v === "string") return v;
  if (v instanceof Uint8Array) return new TextDecoder().decode(v);
  throw new ValidationError(`Header ${TOKEN_HEADER} must be a string`);
}

function utf8(content: Uint8Array): string {
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(content);
  } catch {
    throw new MalformedJsonError("Body is neither JSON nor UTF-8 text");
  }
}

function mediaType(contentType: string | undefined): string {
  return (contentType ?? "").split(";")[0]!.trim().toLowerCase();
}

function invokeBody(text: string, type: string): { body: unknown; unparsedText: boolean } {
  if (text.trim() === "") return { body: undefined, unparsedText: false };
  if (type.startsWith("text/")) return { body: text, unparsedText: false };
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (err) {
    // A bare CSV reading is text; something that starts like JSON and is not is a mistake.
    if (type === "application/json" || /^\s*[[{"]/.test(text)) {
      throw new MalformedJsonError(`Body is not valid JSON: ${err instanceof Error ? err.message : String(err)}`);
    }
    return { body: text, unparsedText: true };
  }
  return { body: checkJson(body, "Body"), unparsedText: false };
}

function messageBody(text: string, contentType: string | undefined): unknown {
  if (text === "") return null; // as over MQTT: an empty message is null
  if (mediaType(contentType).startsWith("text/")) return text;
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return text;
  }
  return checkJson(body, "Body");
}
