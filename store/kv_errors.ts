import { PayloadTooLargeError, SluiceError, UnavailableError, ValidationError } from "../core/errors.ts";

/** SQLite's words for a KV that cannot write now: a full disk, a failing one, a file it may not write. */
const KV_TROUBLE = /database or disk is full|disk I\/O error|database is locked|readonly database/i;

/** Whether an error is KV's own trouble (answered "unavailable": try again later), not the request's. */
export function isKvTrouble(err: unknown): boolean {
  return err instanceof Error && KV_TROUBLE.test(err.message);
}

/**
 * What a write KV refused means for its request: a value it cannot serialize is invalid, one over
 * its limits too large, KV's own trouble unavailable; anything else stays as it is (internal).
 */
export function asKvError(err: unknown): unknown {
  if (err instanceof SluiceError) return err;
  const msg = err instanceof Error ? err.message : String(err);
  // V8's serializer recursing too deep (the edges refuse such values; this is the backstop).
  if (err instanceof RangeError) return new ValidationError(`KV cannot store the value: ${msg}`);
  if (/too large|exceed/i.test(msg)) return new PayloadTooLargeError(`KV refused the write: ${msg}`);
  if (isKvTrouble(err)) return new UnavailableError(`KV refused the write: ${msg}`);
  return err;
}
