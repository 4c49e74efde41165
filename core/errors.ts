/** Sluice's error hierarchy: each error carries a stable code; adapters map codes to answers. */
export type ErrorCode =
  | "validation_failed"
  | "malformed_json"
  | "unauthorized"
  | "forbidden"
  | "not_found"
  | "method_not_allowed"
  | "conflict"
  | "payload_too_large"
  | "rate_limited"
  | "concurrency_conflict"
  | "lease_lost"
  | "unavailable"
  | "script_failed"
  | "internal";

/** Base class: a code for machines, a sentence-case message for people. */
export class SluiceError extends Error {
  constructor(readonly code: ErrorCode, message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** Input that does not have the expected shape or values. */
export class ValidationError extends SluiceError {
  constructor(message: string, code: ErrorCode = "validation_failed") {
    super(code, message);
  }
}

/** A body that is not JSON where JSON is required. */
export class MalformedJsonError extends ValidationError {
  constructor(message = "Body is not valid JSON") {
    super(message, "malformed_json");
  }
}

/** Missing, unknown or revoked credentials. */
export class UnauthorizedError extends SluiceError {
  constructor(message = "A valid token is required") {
    super("unauthorized", message);
  }
}

/** Valid credentials that do not reach this resource. */
export class ForbiddenError extends SluiceError {
  constructor(message: string) {
    super("forbidden", message);
  }
}

/** Unknown channel, script, device, task or pump. */
export class NotFoundError extends SluiceError {
  constructor(message: string) {
    super("not_found", message);
  }
}

/** A route that exists, asked with a method it does not serve. */
export class MethodNotAllowedError extends SluiceError {
  constructor(method: string, path: string, readonly allowed: readonly string[]) {
    super("method_not_allowed", `${path} does not take ${method}; it takes ${allowed.join(", ")}`);
  }
}

/** Something with that id already exists. */
export class ConflictError extends SluiceError {
  constructor(message: string) {
    super("conflict", message);
  }
}

/** A payload over `MAX_BODY_BYTES` or over a KV limit. */
export class PayloadTooLargeError extends SluiceError {
  constructor(message: string) {
    super("payload_too_large", message);
  }
}

/** A device over its rate limit. */
export class RateLimitedError extends SluiceError {
  constructor(message = "Rate limit exceeded, slow down") {
    super("rate_limited", message);
  }
}

/** A write whose expectation (a stream head, a check) no longer holds. */
export class ConcurrencyError extends SluiceError {
  constructor(message: string) {
    super("concurrency_conflict", message);
  }

  /** The error for an append that expected another stream head. */
  static head(stream: string, expected: number, actual: number): ConcurrencyError {
    return new ConcurrencyError(`Stream "${stream}" is at ${actual}, expected ${expected}`);
  }
}

/** This instance no longer owns the writer epoch or a partition lease: stop writing. */
export class LeaseLostError extends SluiceError {
  constructor(message: string) {
    super("lease_lost", message);
  }
}

/** A dependency (KV, broker) is not reachable right now. */
export class UnavailableError extends SluiceError {
  constructor(message: string) {
    super("unavailable", message);
  }
}

/** A script called inline failed (threw, timed out, returned something that is not JSON). */
export class ScriptFailedError extends SluiceError {
  constructor(message: string) {
    super("script_failed", message);
  }
}

/**
 * Turns anything thrown into a message fit for a log line or a task error: an error's message with
 * its cause's (`… (cause: …)`), without the terminal colours Deno puts in some (a module not found).
 */
export function describeError(err: unknown): string {
  try {
    return describe(err, 0);
  } catch {
    // A message getter that throws, a revoked Proxy: user code can throw anything.
    return "An error that cannot be described (reading its message failed)";
  }
}

function describe(err: unknown, depth: number): string {
  if (err instanceof Error) {
    let message = plain(err.message || err.name);
    if (err instanceof AggregateError && Array.isArray(err.errors) && err.errors.length > 0 && depth < 3) {
      const some = err.errors.slice(0, 3).map((e) => describe(e, depth + 1)).join("; ");
      message += ` (${err.errors.length} error(s): ${some}${err.errors.length > 3 ? "; …" : ""})`;
    }
    if (err.cause === undefined || depth >= 3) return message;
    const cause = describe(err.cause, depth + 1);
    return message.includes(cause) ? message : `${message} (cause: ${cause})`;
  }
  return `Non-error thrown: ${shown(err)}`.slice(0, 500);
}

/** A thrown value that is not an Error, as JSON where it has a JSON form, else by its kind. */
function shown(value: unknown): string {
  switch (typeof value) {
    case "bigint":
      return `${value}n`;
    case "symbol":
      return value.toString();
    case "function":
      return `a function (${value.name || "anonymous"})`;
    case "undefined":
      return "undefined";
  }
  if (value instanceof Promise) return "a Promise (await it before throwing?)";
  let json: string | undefined;
  try {
    json = JSON.stringify(value);
  } catch {
    // circular, or a toJSON that throws: named by its kind below
  }
  if (json !== undefined && json !== "{}") return json;
  const kind = Object.prototype.toString.call(value).slice(8, -1);
  return json === "{}" && kind === "Object" ? json : `${/^[AEIOU]/.test(kind) ? "an" : "a"} ${kind}`;
}

/** Text without ANSI escape sequences (colours). */
function plain(text: string): string {
  // deno-lint-ignore no-control-regex
  return text.replace(/\x1b\[[0-9;]*[A-Za-z]/g, "");
}

/**
 * A response stream Sluice ends on purpose, dropping what it has not sent (an SSE client cut off
 * for reading nothing): told where it happens, not again as a failed handler.
 */
export class StreamCutOff extends Error {
  override name = "StreamCutOff";
}
