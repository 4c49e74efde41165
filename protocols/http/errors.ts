import { isKvTrouble } from "../../store/kv_errors.ts";
import { type ErrorCode, MethodNotAllowedError, SluiceError } from "../../core/errors.ts";

const STATUS: Record<ErrorCode, number> = {
  validation_failed: 400,
  malformed_json: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  method_not_allowed: 405,
  conflict: 409,
  payload_too_large: 413,
  rate_limited: 429,
  concurrency_conflict: 409,
  lease_lost: 503,
  unavailable: 503,
  script_failed: 500,
  internal: 500,
};

/**
 * Refusals that asking again after a second may get past: the answer says so (`Retry-After: 1`). Not `lease_lost`: a
 * process whose KV another one took over refuses every write from then on.
 */
const RETRY_SOON: ReadonlySet<ErrorCode> = new Set(["rate_limited", "unavailable"]);

/** The HTTP answer for anything thrown: `{"error": {"code", "message"}}` with its status. */
export function errorResponse(err: unknown, log?: (line: string) => void): Response {
  if (err instanceof SluiceError) {
    const headers: HeadersInit = RETRY_SOON.has(err.code)
      ? { "retry-after": "1" }
      : err instanceof MethodNotAllowedError
      ? { allow: err.allowed.join(", ") }
      : {};
    return Response.json({ error: { code: err.code, message: err.message } }, { status: STATUS[err.code], headers });
  }
  // KV's own trouble on a write outside the group commit (which says it once itself): not the caller's fault.
  if (isKvTrouble(err)) {
    return Response.json(
      { error: { code: "unavailable", message: `KV refused the write: ${(err as Error).message}` } },
      { status: 503, headers: { "retry-after": "1" } },
    );
  }
  log?.(`Unexpected error: ${err instanceof Error ? err.stack ?? err.message : String(err)}`);
  return Response.json({ error: { code: "internal", message: "Internal error" } }, { status: 500 });
}
