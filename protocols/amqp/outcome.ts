import { describeError, type ErrorCode, SluiceError } from "../../core/errors.ts";
import { redactTokens } from "../../core/names.ts";

/** What the consumer does with a delivery that ingest did not take. */
export type Outcome =
  /** Refused: publish it to `iot.dlx` with the reason, then ack it. Never processed. */
  | { readonly action: "dead-letter"; readonly code: ErrorCode; readonly reason: string; readonly record: boolean }
  /** Sluice could not take it right now: try again after a pause, keeping the device's order. */
  | { readonly action: "retry"; readonly delayMs: number };

/** Errors that say the message itself is wrong: retrying cannot help. */
const REFUSED: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  "validation_failed",
  "malformed_json",
  "unauthorized",
  "forbidden",
  "not_found",
  "conflict",
  "payload_too_large",
  "rate_limited",
]);

/** Attempts at an unexpected error (a bug, say) before the message is dead-lettered as internal. */
export const MAX_UNEXPECTED_ATTEMPTS = 8;

/**
 * Maps what ingest threw to the AMQP answer, in one place. Refusals are dead-lettered (those over
 * the rate limit without a refused-log record, as for MQTT); a dependency that is unavailable is
 * retried for as long as it takes; anything unexpected is retried a few times, then dead-lettered.
 */
export function outcomeOf(err: unknown, attempt: number): Outcome {
  const delayMs = Math.min(5000, 50 * 2 ** Math.min(attempt, 10));
  if (err instanceof SluiceError) {
    if (REFUSED.has(err.code)) {
      return {
        action: "dead-letter",
        code: err.code,
        reason: redactTokens(err.message),
        record: err.code !== "rate_limited",
      };
    }
    if (err.code === "unavailable" || err.code === "lease_lost") return { action: "retry", delayMs };
  }
  if (attempt + 1 < MAX_UNEXPECTED_ATTEMPTS) return { action: "retry", delayMs };
  return {
    action: "dead-letter",
    code: "internal",
    reason: `Sluice could not take it: ${describeError(err)}`,
    record: true,
  };
}
