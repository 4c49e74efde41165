/**
 * The API a script sees. A script is a module whose default export is
 * `(request, ctx) => result`; what it returns must be JSON.
 *
 * ```ts
 * import type { Script } from "@sluice/script";
 * const hello: Script = (request, ctx) => {
 *   ctx.log.info("hello from", request.device);
 *   return { echoed: request.body };
 * };
 * export default hello;
 * ```
 */

/**
 * Reads an ISO 8601 date or date-time the way Sluice does (a time without a zone is UTC; a day not in
 * the calendar is refused): epoch ms, or null. `ctx.pumps.record` takes a reading's `time` in this form.
 */
export { parseIsoTime } from "../core/iso_time.ts";
export { FUTURE_SKEW_MS } from "../actors/pump/reading_check.ts";

/**
 * Throw this for input that will never work (a reading that does not parse): the task goes to
 * the dead letters at once instead of being retried, and an inline call answers 400.
 */
export class PermanentError extends Error {
  readonly permanent = true;
  constructor(message: string) {
    super(message);
    this.name = "PermanentError";
  }
}

/** What a script is run with. */
export interface ScriptRequest {
  /** The script's own path, e.g. `blog/queues/processor`. */
  readonly method: string;
  /** The payload: a task's `params`, or the JSON body of an HTTP call. */
  readonly body: unknown;
  /** Same as `body`, under the name invoke messages use. */
  readonly params: unknown;
  /** The device that sent it (null for the admin or an anonymous sender). */
  readonly device: string | null;
  /** The channel a task was queued on (absent for an inline HTTP call). */
  readonly channel?: string;
  /** The task id (absent for an inline HTTP call). */
  readonly taskId?: string;
  /** 1 for the first attempt. */
  readonly attempt: number;
  /** When the message was received, ISO time. */
  readonly receivedAt: string;
}

/** What `ctx.queue(channel).queue(...)` answers, as scriptr.io's queue module did. */
export interface QueueResponse {
  readonly metadata: { readonly status: "success" };
  readonly result: { readonly taskId: string };
}

/** A reading recorded on a pump's event log. */
export interface PumpReading {
  readonly temperature: number;
  readonly pressure: number;
  readonly coordinates: { readonly lat: number; readonly lon: number };
  /** When the device took the reading, ISO time. */
  readonly time: string;
  /** Absent or null when the outside temperature is not known. */
  readonly outsideTemperature?: number | null;
}

/** Settings a script may read. */
export interface ScriptSettings {
  /** Base URL of the weather API, or null when it is switched off. */
  readonly weatherApiUrl: string | null;
}

/** Everything a script can do. Writes are buffered and land with the task's commit. */
export interface ScriptContext {
  /** Queues tasks on a channel; the task id is known at once, the task exists once the run commits. */
  queue(channel: string): { queue(script: string, body?: unknown): QueueResponse };
  /** Publishes a message on a channel's topic when the run commits. */
  publish(channel: string, message: unknown): void;
  readonly log: {
    debug(...args: unknown[]): void;
    info(...args: unknown[]): void;
    warn(...args: unknown[]): void;
    error(...args: unknown[]): void;
  };
  /** Calls to the outside; they may repeat when a run is retried. */
  readonly http: {
    /**
     * `fetch` of an absolute http:// or https:// URL (any other address is refused with a `TypeError`), cut after
     * `timeoutMs` (10 s when not given; a `TimeoutError` naming the URL and the limit) and at the
     * run's end in any case (`SCRIPT_TIMEOUT_MS`).
     */
    fetch(url: string | URL, init?: RequestInit & { timeoutMs?: number }): Promise<Response>;
  };
  /** A small JSON document store. */
  readonly documents: {
    get(collection: string, id: string): Promise<unknown | null>;
    save(collection: string, id: string, doc: unknown): void;
    delete(collection: string, id: string): void;
  };
  /** Records readings on pumps' event logs (the pump id defaults to the sending device). */
  readonly pumps: { record(reading: PumpReading, pumpId?: string): void };
  readonly settings: ScriptSettings;
}

/** A script's default export. */
export type Script = (request: ScriptRequest, ctx: ScriptContext) => unknown | Promise<unknown>;

/** A document a run read, and the version it saw: the run's commit checks it is unchanged. */
export interface DocumentRead {
  readonly collection: string;
  readonly id: string;
  readonly versionstamp: string | null;
}

/** A script's buffered writes, applied in one commit with the task's cursor. */
export type Effect =
  | {
    readonly kind: "queue";
    readonly channel: string;
    readonly script: string;
    readonly body: unknown;
    readonly taskId: string;
  }
  | { readonly kind: "publish"; readonly channel: string; readonly message: unknown }
  | { readonly kind: "saveDocument"; readonly collection: string; readonly id: string; readonly doc: unknown }
  | { readonly kind: "deleteDocument"; readonly collection: string; readonly id: string }
  | { readonly kind: "recordReading"; readonly pumpId: string; readonly reading: PumpReading };
