import { valueSize } from "../../core/kv_size.ts";

/**
 * The errors a retry record keeps: the last 20, fewer when they would take over this many bytes as
 * KV stores them (an error is up to 2,000 characters, two bytes each outside Latin-1): the record,
 * and the dead letter that adds the task's params to them, must fit one KV value.
 */
export const ERRORS_BYTES = 16 * 1024;

/** One failed attempt of a task. */
export interface AttemptError {
  readonly attempt: number;
  /** ms since the epoch. */
  readonly at: number;
  readonly error: string;
}

/** The failing task at the head of a stream, waiting for its next attempt. */
export interface RetryState {
  readonly seq: number;
  readonly taskId: string;
  readonly attempts: number;
  readonly errors: readonly AttemptError[];
  /** When the next attempt may start, ms since the epoch. */
  readonly nextAt: number;
}

/** What happens after a failed attempt. */
export type AfterFailure =
  | { readonly kind: "retry"; readonly state: RetryState }
  | { readonly kind: "dead"; readonly errors: readonly AttemptError[]; readonly attempts: number };

export interface RetryRules {
  readonly maxAttempts: number;
  /** Delay before the second attempt; it doubles each time, up to `maxDelayMs`. */
  readonly baseDelayMs: number;
  readonly maxDelayMs?: number;
}

/** Decides between another attempt (with exponential backoff) and the dead-letter list. */
export function afterFailure(
  previous: RetryState | null,
  task: { readonly seq: number; readonly taskId: string },
  error: string,
  now: number,
  rules: RetryRules,
  permanent = false,
): AfterFailure {
  const earlier = previous?.seq === task.seq ? previous : null;
  const attempts = (earlier?.attempts ?? 0) + 1;
  const errors = keptErrors([...(earlier?.errors ?? []), { attempt: attempts, at: now, error }]);
  if (permanent || attempts >= rules.maxAttempts) return { kind: "dead", errors, attempts };
  const delay = Math.min(rules.baseDelayMs * 2 ** (attempts - 1), rules.maxDelayMs ?? 5 * 60_000);
  return { kind: "retry", state: { seq: task.seq, taskId: task.taskId, attempts, errors, nextAt: now + delay } };
}

/** The attempt number the next run of a task will have. */
export function nextAttempt(previous: RetryState | null, seq: number): number {
  return previous?.seq === seq ? previous.attempts + 1 : 1;
}

/** The last 20 errors, and of those the latest that fit ERRORS_BYTES (the last one always). */
function keptErrors(errors: AttemptError[]): AttemptError[] {
  const kept = errors.slice(-20);
  while (kept.length > 1 && valueSize(kept) > ERRORS_BYTES) kept.shift();
  return kept;
}
