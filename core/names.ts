/** What ids and names may look like; the edges validate against these. */

/** Device ids (and pump ids, a pump being its device): letters, digits and `_ . : -`, 1–64 characters. */
export const DEVICE_ID = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$/;

/** `DEVICE_ID` in words, for messages. */
export const DEVICE_ID_RULE = "must be 1–64 letters, digits or _ . : - (starting with a letter or digit)";

/** Channel names: letters, digits, `_` and `-`, 1–64 characters; a leading `_` is Sluice's own. */
export const CHANNEL_NAME = /^[A-Za-z0-9_][A-Za-z0-9_-]{0,63}$/;

/**
 * Device tokens are `sl_` and 43 URL-safe base64 characters, generated admin tokens `sla_` and 43
 * (see `store/hash.ts`).
 */
const TOKEN_SHAPE = /^sla?_[A-Za-z0-9_-]{43}$/;

/**
 * Whether a segment of an MQTT topic or AMQP routing key looks like a token (so it is never used as a
 * channel name, nor recorded as one when refused).
 */
export function looksLikeToken(segment: string): boolean {
  return TOKEN_SHAPE.test(segment);
}

/**
 * Hides anything shaped like a Sluice token (`sl_…`, `sla_…`) in a text that is kept or logged: a
 * routing key with a segment missing, or a reading sent in the wrong field, can carry one.
 */
export function redactTokens(text: string): string {
  // No word boundary before it: a token glued to a word (`device_sl_…`, `Bearersl_…`) is hidden too.
  return text.replace(/sla?_[A-Za-z0-9_-]{16,}/g, "sl_…");
}

/** Script paths: segments of letters, digits, `_` and `-` joined by `/`. */
export const SCRIPT_PATH = /^[A-Za-z0-9_-]+(\/[A-Za-z0-9_-]+){0,7}$/;

/** Channels whose names start with `_` belong to Sluice. */
export function isSystemChannel(name: string): boolean {
  return name.startsWith("_");
}

/** The system channel that carries every pump state change. */
export const PUMPS_CHANNEL = "_pumps";

/** First path segments that belong to Sluice's own routes and can never be script paths. */
export const RESERVED_SEGMENTS = [
  "admin",
  "channels",
  "tasks",
  "pumps",
  "ws",
  "mqtt",
  "healthz",
  "metrics",
  "docs",
  "openapi.json",
] as const;
