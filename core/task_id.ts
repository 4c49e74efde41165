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
  const dot = id.lastIndexOf(".");
  if (dot <= 0 || id.startsWith("r.")) return null;
  const seq = parseInt(id.slice(dot + 1), 36);
  if (!Number.isSafeInteger(seq) || seq < 1 || seq.toString(36) !== id.slice(dot + 1)) return null;
  try {
    const stream = DECODER.decode(fromBase64Url(id.slice(0, dot)), { stream: false });
    return stream.startsWith("t/") ? { stream, seq } : null;
  } catch {
    return null;
  }
}

function toBase64Url(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes)).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

function fromBase64Url(s: string): Uint8Array {
  if (!/^[A-Za-z0-9_-]*$/.test(s)) throw new Error("Not base64url");
  const bin = atob(s.replaceAll("-", "+").replaceAll("_", "/"));
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}
