import { MalformedJsonError } from "../../core/errors.ts";
import { checkJson } from "../../core/json_check.ts";

/** A payload as Sluice reads it: parsed JSON, or text when it is not JSON. */
export interface DecodedPayload {
  readonly body: unknown;
  /** False when the payload was kept as text. */
  readonly json: boolean;
}

const utf8 = new TextDecoder("utf-8", { fatal: true });
const encoder = new TextEncoder();

/**
 * Reads an MQTT payload. Topic messages that are not JSON stay text; an invoke payload that
 * starts like JSON but does not parse is malformed (a bare CSV string stays text, for channels
 * with a default script). Binary that is not UTF-8 is refused.
 */
export function decodePayload(kind: "invoke" | "message", payload: Uint8Array): DecodedPayload {
  if (payload.byteLength === 0) return { body: kind === "message" ? null : undefined, json: true };
  let text: string;
  try {
    text = utf8.decode(payload);
  } catch {
    throw new MalformedJsonError("Payload is neither JSON nor UTF-8 text");
  }
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (err) {
    const start = text.trimStart()[0];
    if (kind === "invoke" && (start === "{" || start === "[" || start === '"')) {
      throw new MalformedJsonError(`Payload is not valid JSON: ${err instanceof Error ? err.message : String(err)}`);
    }
    return { body: text, json: false };
  }
  return { body: checkJson(body, "Payload"), json: true };
}

/** A topic message as an MQTT payload: text as is, anything else as JSON. */
export function encodeMessage(message: unknown): Uint8Array {
  return encoder.encode(typeof message === "string" ? message : JSON.stringify(message) ?? "null");
}
