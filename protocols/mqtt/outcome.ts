import { describeError, type ErrorCode, SluiceError } from "../../core/errors.ts";

/**
 * What the MQTT side does with a publish, once ingest answered:
 * - `accepted`: committed; PUBACK.
 * - `refused`: recorded at `/admin/refused`, then PUBACK (resending would not help).
 * - `quota`: over the rate limit; PUBACK and count (MQTT 3.1.1 has no reason code to carry).
 * - `forbidden`: a route the session may not use; disconnect the client.
 * - `retry`: not committed for a passing reason; disconnect without PUBACK so the client resends.
 */
export type Outcome =
  | { readonly kind: "accepted" }
  | { readonly kind: "refused"; readonly code: ErrorCode; readonly reason: string }
  | { readonly kind: "quota" }
  | { readonly kind: "forbidden"; readonly reason: string }
  | { readonly kind: "retry"; readonly reason: string };

/** Where an error came from: the adapter reading the topic (its token), or ingest. */
export type Stage = "topic" | "ingest";

type Action = Exclude<Outcome["kind"], "accepted">;

const ACTIONS: Readonly<Record<ErrorCode, Action | ((stage: Stage) => Action)>> = {
  malformed_json: "refused",
  validation_failed: "refused",
  not_found: "refused",
  method_not_allowed: "refused",
  payload_too_large: "refused",
  conflict: "refused",
  // A bad or revoked token in the topic is recorded; ingest refusing an anonymous sender means the
  // session used a route it may not use.
  unauthorized: (stage) => stage === "topic" ? "refused" : "forbidden",
  forbidden: "forbidden",
  rate_limited: "quota",
  concurrency_conflict: "retry",
  lease_lost: "retry",
  unavailable: "retry",
  script_failed: "retry",
  internal: "retry",
};

/** The one mapping from Sluice's errors to MQTT outcomes. */
export function outcomeOf(err: unknown, stage: Stage): Outcome {
  if (!(err instanceof SluiceError)) return { kind: "retry", reason: describeError(err) };
  const entry = ACTIONS[err.code];
  const action = typeof entry === "function" ? entry(stage) : entry;
  switch (action) {
    case "refused":
      return { kind: "refused", code: err.code, reason: err.message };
    case "quota":
      return { kind: "quota" };
    case "forbidden":
      return { kind: "forbidden", reason: err.message };
    case "retry":
      return { kind: "retry", reason: err.message };
    default: {
      const never: never = action;
      throw new Error(`Unhandled MQTT action ${never}`);
    }
  }
}
