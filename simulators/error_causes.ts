/**
 * Why sends failed: one count per distinct cause, so a summary can say what went wrong and not
 * only how often. Causes are normalized (`HTTP 429: {"error":{"code":"rate_limited",…}}` is
 * `HTTP 429 rate_limited`), so one cause is not counted as many messages.
 *
 * @module
 */

/** An error's message; for `fetch`'s "fetch failed" (Deno 2.6 on), the reason it carries as its cause. */
export function failureMessage(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  return /^fetch failed$/i.test(err.message) && err.cause instanceof Error ? err.cause.message : err.message;
}

/** The cause of a failed send, as one short line shared by every failure of its kind. */
export function errorCause(err: unknown): string {
  // The client's own port changes with every connection: "error sending request from 127.0.0.1:51246 for …".
  const message = failureMessage(err).split("\n")[0]!.trim().replace(/\bfrom (\S+?):\d+\b/, "from $1") ||
    "unknown error";
  const http = /^HTTP (\d{3}):?\s*(.*)$/s.exec(message);
  if (!http) return message.length > 160 ? `${message.slice(0, 160)}…` : message;
  try {
    const error = JSON.parse(http[2]!)?.error;
    const code = error?.code;
    // Sluice's brute-force throttle answers 429 too: for an address, not for a device over its rate.
    if (code === "rate_limited" && /failed authentication/i.test(String(error?.message))) {
      return `HTTP ${http[1]} ${code}: too many failed authentications from this address (revoked or wrong tokens)`;
    }
    if (typeof code === "string") return `HTTP ${http[1]} ${code}`;
  } catch {
    // Not Sluice's JSON error (a proxy's page): the status says enough.
  }
  return `HTTP ${http[1]}`;
}

/** Counts of failed sends by cause. */
export class ErrorCauses {
  readonly #counts = new Map<string, number>();

  /** Counts failures of one cause; gives the cause when it is new (worth a line as it happens), else null. */
  add(err: unknown, times = 1): string | null {
    const cause = errorCause(err);
    const seen = this.#counts.get(cause);
    this.#counts.set(cause, (seen ?? 0) + times);
    return seen === undefined ? cause : null;
  }

  /** Causes with their counts, the most frequent first. */
  top(): [cause: string, count: number][] {
    return [...this.#counts].sort((a, b) => b[1] - a[1]);
  }
}
