/**
 * Task ids. An id taken at ingest encodes where the task sits (stream and seq), so finding it
 * needs no index record. Ids handed out before the position is known (a script's `ctx.queue`)
 * are random and found through an index key.
 */
const ENCODER = new TextEncoder();
const DECODER = new TextDecoder();

const encodedStreams = new Map<string, string>();

/** The id of the task at this position. */
export function positionalTaskId(stream: string, seq: number): string {
  let encoded = encodedStreams.get(stream);
  if (encoded === undefined) {
    encoded = toBase64Url(ENCODER.encode(stream));
    if (encodedStreams.size > 50_000) encodedStreams.clear();
    encodedStreams.set(stream, encoded);
  }
  return `${encoded}.${seq.toString(36)}`;
}

/** A fresh id for a task whose position is not known yet. */
export function randomTaskId(): string {
  return `r.${crypto.randomUUID().replaceAll("-", "")}`;
}

/** The position a positional id encodes, or null for a random or malformed id. */
export function positionOfTaskId(id: string): { stream: string; seq: number } | null {
  if (id.startsWith("r.")) return null;
  const position = decodePosition(id);
  return position?.stream.startsWith("t/") ? position : null;
}

/** The id of one subscriber script's run for a topic message (its dead letter's id too). */
export function subscriberRunId(topicStream: string, seq: number, script: string): string {
  return `s.${positionalTaskId(topicStream, seq)}.${script.replaceAll("/", "~")}`;
}

/** What every subscriber run id of a topic starts with (they sort together). */
export function subscriberRunPrefix(topicStream: string): string {
  return `s.${positionalTaskId(topicStream, 1).replace(/[^.]*$/, "")}`;
}

/** What a subscriber run's id encodes, or null for any other id. */
export function subscriberRunOf(id: string): { stream: string; seq: number; script: string } | null {
  if (!id.startsWith("s.")) return null;
  const dot = id.lastIndexOf(".");
  const position = dot > 2 ? decodePosition(id.slice(2, dot)) : null;
  const script = id.slice(dot + 1).replaceAll("~", "/");
  return position?.stream.startsWith("m/") && script ? { ...position, script } : null;
}

/** Stream and seq of `<base64url stream>.<seq in base 36>`, or null. */
function decodePosition(id: string): { stream: string; seq: number } | null {
  const dot = id.lastIndexOf(".");
  if (dot <= 0) return null;
  const seq = parseInt(id.slice(dot + 1), 36);
  if (!Number.isSafeInteger(seq) || seq < 1 || seq.toString(36) !== id.slice(dot + 1)) return null;
  let stream: string;
  try {
    stream = DECODER.decode(fromBase64Url(id.slice(0, dot)));
  } catch {
    return null;
  }
  // One spelling only: base64 has several for the same bytes (spare low bits), and lookups by id are exact.
  return positionalTaskId(stream, seq) === id ? { stream, seq } : null;
}

function toBase64Url(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes)).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

function fromBase64Url(s: string): Uint8Array {
  if (!/^[A-Za-z0-9_-]*$/.test(s)) throw new Error("Not base64url");
  const bin = atob(s.replaceAll("-", "+").replaceAll("_", "/"));
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}
