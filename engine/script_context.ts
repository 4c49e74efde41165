import { randomTaskId } from "../core/task_id.ts";
import { ValidationError } from "../core/errors.ts";
import { KV_LIMITS } from "../store/kv_limits.ts";
import { PermanentError } from "./script_api.ts";
import type { DocumentRead, Effect, ScriptContext, ScriptRequest, ScriptSettings } from "./script_api.ts";
import { checkJson } from "../core/json_check.ts";
import { logSafe } from "../core/log.ts";
import { undoJsonTampering } from "./json_guard.ts";
import { redactTokens } from "../core/names.ts";

/** A stored document and its version. */
export interface VersionedDocument {
  readonly value: unknown | null;
  readonly versionstamp: string | null;
}

/** What a context needs from its host. */
export interface ContextHost {
  readonly scripts: ReadonlySet<string>;
  readonly settings: ScriptSettings;
  readonly getDocument: (collection: string, id: string) => Promise<VersionedDocument>;
  readonly httpTimeoutMs: number;
}

/** A context whose writes are buffered; `seal()` ends the run and hands them over. */
export function bufferedContext(
  request: ScriptRequest,
  host: ContextHost,
  /** Writes of earlier runs of the same batch, not committed yet (read-your-writes). */
  pending: ReadonlyMap<string, unknown | null> = new Map(),
): { ctx: ScriptContext; seal(): { effects: Effect[]; reads: DocumentRead[] } } {
  let effects: Effect[] | null = [];
  /** Aborted when the run ends (done, failed or timed out): its `ctx.http` calls end with it (made at the first). */
  let ended: AbortController | undefined;
  const reads = new Map<string, DocumentRead>();
  // This run's own document writes: a run reads back what it saved or deleted, as later runs will.
  const written = new Map<string, unknown | null>();
  const push = (e: Effect) => {
    if (!effects) throw new Error("This run has ended; its context can no longer write");
    // Past this the run's writes can never land (one KV commit holds them all): said at once, not held in memory.
    if (effects.length >= KV_LIMITS.mutations) {
      throw new PermanentError(
        `This run wrote more than ${KV_LIMITS.mutations} times (queued tasks, publishes, documents and readings ` +
          "together), more than one KV commit holds: split the work across runs (queue a task that goes on with the rest)",
      );
    }
    effects.push(e);
  };
  const prefix = `[${request.method}${request.taskId ? ` ${request.taskId}` : ""}]`;
  /** Lines this run has logged: past `MAX_LOG_LINES`, one more says that the rest are left out. */
  let logged = 0;
  const log = (write: (line: string) => void, level: string, args: readonly unknown[]) => {
    if (++logged > MAX_LOG_LINES + 1) return;
    const text = logged > MAX_LOG_LINES
      ? `(this run's further lines are not logged: ${MAX_LOG_LINES} at most a run)`
      : logText(args);
    write(`${new Date().toISOString()} ${level} ${prefix} ${text}`);
  };
  const ctx: ScriptContext = {
    queue: (channel) => ({
      queue(script, body) {
        if (!host.scripts.has(script)) throw new ValidationError(`Unknown script "${script}"`);
        const taskId = randomTaskId();
        push({ kind: "queue", channel: String(channel), script, body: toJson(body ?? null), taskId });
        return { metadata: { status: "success" }, result: { taskId } };
      },
    }),
    publish: (channel, message) => push({ kind: "publish", channel: String(channel), message: toJson(message) }),
    log: {
      // As Sluice's own lines: time, level, then which run said it; token-shaped text hidden, as in
      // every line Sluice writes (a body a script logs may carry a device's token).
      debug: (...a) => log((line) => console.debug(line), "debug", a),
      info: (...a) => log((line) => console.info(line), "info ", a),
      warn: (...a) => log((line) => console.warn(line), "warn ", a),
      error: (...a) => log((line) => console.error(line), "error", a),
    },
    http: {
      fetch: (url, init = {}) => {
        if (!effects) return Promise.reject(new Error("This run has ended; its context can no longer fetch"));
        // Only the outside, by an absolute address: a relative one would be read beside Sluice's code, and
        // `file:` would hand a device any file Sluice may read, when a script passes on an address it was sent.
        const refused = notWebUrl(url) ?? badInit(init);
        if (refused) return Promise.reject(new TypeError(refused));
        const { timeoutMs = host.httpTimeoutMs, ...rest } = init;
        // The time limit and the run's end hold with a signal of the script's own too.
        ended ??= new AbortController();
        const timeout = AbortSignal.timeout(timeoutMs);
        const signals = [timeout, ended.signal, ...(rest.signal ? [rest.signal] : [])];
        const call = fetch(url, { ...rest, signal: AbortSignal.any(signals) }).catch((err) => {
          if (!timeout.aborted || !signals.every((s) => s === timeout || !s.aborted)) throw err;
          // Said with what was called and the limit (not the query, which may hold a key).
          throw new DOMException(
            `ctx.http.fetch of ${calledUrl(url)} had no answer within ${timeoutMs} ms (timeoutMs; ` +
              `${host.httpTimeoutMs} ms when not given)`,
            "TimeoutError",
          );
        });
        // A call the run did not wait for fails at its end with nobody to hear it: that must not end the process
        // (scripts run in-process without Workers). One the run awaits still gets the failure.
        call.catch(() => {});
        return call;
      },
    },
    documents: {
      get: async (collection, id) => {
        [collection, id] = documentName("get", collection, id);
        const key = documentKey(collection, id);
        // Copies: the objects are the writes to commit, which a change the run does not save must not reach.
        const unsaved = written.has(key) ? written : pending.has(key) ? pending : null;
        if (unsaved) return structuredClone(unsaved.get(key) ?? null);
        const doc = await host.getDocument(collection, id);
        if (!reads.has(key)) reads.set(key, { collection, id, versionstamp: doc.versionstamp });
        return doc.value;
      },
      save: (collection, id, doc) => {
        [collection, id] = documentName("save", collection, id);
        const effect = { kind: "saveDocument", collection, id, doc: toJson(doc) } as const;
        push(effect);
        written.set(documentKey(effect.collection, effect.id), effect.doc);
      },
      delete: (collection, id) => {
        [collection, id] = documentName("delete", collection, id);
        push({ kind: "deleteDocument", collection, id });
        written.set(documentKey(collection, id), null);
      },
    },
    pumps: {
      record: (reading, pumpId) => {
        const id = pumpId ?? request.device;
        if (!id) throw new ValidationError("A reading needs a pump id when no device sent the request");
        push({ kind: "recordReading", pumpId: String(id), reading: toJson(reading) as typeof reading });
      },
    },
    settings: host.settings,
  };
  return {
    ctx,
    seal() {
      const out = effects ?? [];
      effects = null;
      ended?.abort(new Error("This run has ended (timed out, or over)"));
      return { effects: out, reads: [...reads.values()] };
    },
  };
}

/** Why `ctx.http.fetch` refuses an address (null: an absolute http: or https: URL). */
function notWebUrl(url: unknown): string | null {
  const text = url instanceof Request ? url.url : url instanceof URL ? url.href : typeof url === "string" ? url : null;
  const shown = JSON.stringify(String(url).slice(0, 100));
  if (text === null) return `ctx.http.fetch needs a URL (a string or a URL), not ${shown}`;
  const parsed = URL.parse(text);
  if (!parsed) return `ctx.http.fetch needs an absolute http:// or https:// URL, not ${shown}`;
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
    return `ctx.http.fetch calls http:// and https:// URLs only, not ${parsed.protocol} (${shown})`;
  }
  return null;
}

/**
 * A document's collection and id as the store keeps them (text; a number is taken as its text): anything else is a
 * mistake that `String()` would hide (an object's collection would be "[object Object]").
 */
function documentName(call: string, collection: unknown, id: unknown): [string, string] {
  for (const [what, v] of [["collection", collection], ["id", id]] as const) {
    if (typeof v !== "string" && !(typeof v === "number" && Number.isFinite(v))) {
      const shown = typeof v === "object" && v !== null ? (Array.isArray(v) ? "an array" : "an object") : typeof v;
      throw new TypeError(`ctx.documents.${call}: the ${what} must be a string (or a number), not ${shown}`);
    }
  }
  return [String(collection), String(id)];
}

/** Where a fetch went, for an error: its origin and path. */
function calledUrl(url: string | URL | Request): string {
  try {
    const u = new URL(url instanceof Request ? url.url : url);
    return `${u.origin}${u.pathname}`;
  } catch {
    return "its URL";
  }
}

/** Why `init` of a `ctx.http.fetch` cannot be used (fetch's options and `timeoutMs`), or null. */
function badInit(init: unknown): string | null {
  if (init === null || typeof init !== "object") {
    return `ctx.http.fetch takes its options as an object, not ${init === null ? "null" : typeof init}`;
  }
  const { timeoutMs } = init as { timeoutMs?: unknown };
  if (timeoutMs === undefined || (typeof timeoutMs === "number" && timeoutMs > 0 && timeoutMs < 2 ** 31)) return null;
  return `ctx.http.fetch's timeoutMs is milliseconds from 1 to 2^31 − 1, not ${
    JSON.stringify(timeoutMs) ?? typeof timeoutMs
  }`;
}

/** The most lines one run logs, and the longest line (characters; the rest is cut, saying how much). */
const MAX_LOG_LINES = 1000;
const MAX_LOG_CHARS = 8192;

/**
 * A log call's arguments as one line, as `console.log` shows them, with token-shaped text hidden and cut at
 * `MAX_LOG_CHARS`. Logging never fails a run: a value that cannot be shown (its custom inspect throws) is named so.
 */
function logText(args: readonly unknown[]): string {
  const text = redactTokens(
    args.map((a) => {
      try {
        return typeof a === "string" ? a : Deno.inspect(a);
      } catch {
        return "[a value that cannot be shown]";
      }
    }).join(" "),
  );
  const cut = text.length > MAX_LOG_CHARS
    ? `${text.slice(0, MAX_LOG_CHARS)}… (${text.length - MAX_LOG_CHARS} more characters)`
    : text;
  return logSafe(cut);
}

/** The key of a document in a batch's pending writes. */
export function documentKey(collection: string, id: string): string {
  return `${collection}\u0000${id}`;
}

/** A JSON copy of a value; throws a clear error for what JSON cannot carry. */
export function toJson(value: unknown): unknown {
  return toSizedJson(value).value;
}

/** Taken before any script runs: a script that replaces `JSON.parse` must not change how later runs' values copy. */
const { parse: jsonParse, stringify: jsonStringify } = JSON;

/** `toJson`, with the size of its JSON text (characters). */
export function toSizedJson(value: unknown): { value: unknown; size: number } {
  undoJsonTampering();
  if (value === undefined) return { value: null, size: 4 };
  let text: string | undefined;
  try {
    text = jsonStringify(value);
  } catch (err) {
    throw new ValidationError(`Value is not JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (text === undefined) throw new ValidationError(`Value of type ${typeof value} is not JSON`);
  return { value: checkJson(jsonParse(text), "Value"), size: text.length };
}
