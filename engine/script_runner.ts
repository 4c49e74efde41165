import { describeError } from "../core/errors.ts";
import { scriptAt, type ScriptManifest } from "./manifest.ts";
import type { DocumentRead, Effect, Script, ScriptRequest } from "./script_api.ts";
import { bufferedContext, type ContextHost, documentKey, toSizedJson } from "./script_context.ts";
import { JsonTampered } from "./json_guard.ts";

/** What one run of a script came to. `interrupted` runs were cut short by no fault of their own. */
/**
 * The largest result (JSON characters) kept in KV beside a run's writes: a KV value holds 64 KiB and
 * the run's other writes share the commit. A retried task's record and a public call's answer for
 * resends keep a bigger one without it.
 */
export const MAX_KEPT_RESULT = 16 * 1024;

export type Outcome =
  | {
    readonly ok: true;
    readonly result: unknown;
    /** The result's JSON size (characters). */
    readonly resultSize: number;
    readonly effects: readonly Effect[];
    /** Documents read (and their versions): the commit fails if one changed meanwhile. */
    readonly reads: readonly DocumentRead[];
    readonly ms: number;
  }
  | {
    readonly ok: false;
    readonly error: string;
    readonly ms: number;
    /** Cut short by no fault of its own (a neighbour's busy loop, a stop): run again, uncounted. */
    readonly interrupted?: boolean;
    /** Failed for running past `SCRIPT_TIMEOUT_MS`. */
    readonly timedOut?: boolean;
    /** Retrying cannot help: the script said its input will never work (`PermanentError`), or its result
     * cannot be kept (not JSON). */
    readonly permanent?: "input" | "result";
  };

/** Loads scripts from a manifest once each. */
export class ScriptLoader {
  readonly #loaded = new Map<string, Promise<Script>>();
  constructor(private readonly manifest: ScriptManifest) {}

  load(method: string): Promise<Script> {
    let p = this.#loaded.get(method);
    if (!p) {
      const entry = scriptAt(this.manifest, method);
      if (!entry) return Promise.reject(new Error(`Unknown script "${method}"`));
      p = entry.load().then((m) => {
        if (typeof m.default !== "function") throw new Error(`Script "${method}" has no default export function`);
        return m.default;
      });
      p.catch(() => this.#loaded.delete(method));
      this.#loaded.set(method, p);
    }
    return p;
  }
}

/**
 * Runs requests one after the other, in order, and stops after the first failure (later tasks
 * of an ordered stream must wait for it). Each outcome is reported as soon as it is known.
 */
export async function runInOrder(
  requests: readonly ScriptRequest[],
  loader: ScriptLoader,
  host: ContextHost,
  timeoutMs: number,
  report: (index: number, outcome: Outcome) => void,
  halted: () => boolean = () => false,
): Promise<void> {
  const pending = new Map<string, unknown | null>();
  for (const [i, request] of requests.entries()) {
    if (halted()) return;
    const outcome = await runOne(request, loader, host, timeoutMs, pending);
    report(i, outcome);
    if (!outcome.ok) return;
    for (const e of outcome.effects) {
      if (e.kind === "saveDocument") pending.set(documentKey(e.collection, e.id), e.doc);
      if (e.kind === "deleteDocument") pending.set(documentKey(e.collection, e.id), null);
    }
  }
}

/** Runs one request with a time limit; a throw, a timeout or a non-JSON result (permanent) is a failure. */
export async function runOne(
  request: ScriptRequest,
  loader: ScriptLoader,
  host: ContextHost,
  timeoutMs: number,
  pending?: ReadonlyMap<string, unknown | null>,
): Promise<Outcome> {
  const started = performance.now();
  const { ctx, seal } = bufferedContext(request, host, pending);
  let timer: ReturnType<typeof setTimeout> | undefined;
  // Told by the timer, not by what was thrown: `instanceof` on a thrown revoked proxy throws.
  let timedOut = false;
  try {
    const script = await loader.load(request.method);
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        timedOut = true;
        reject(new Error(`Script timed out after ${timeoutMs} ms`));
      }, timeoutMs);
    });
    const value = await Promise.race([Promise.resolve().then(() => script(request, ctx)), timeout]);
    let result: { value: unknown; size: number };
    try {
      result = toSizedJson(value);
    } catch (err) {
      if (err instanceof JsonTampered) throw err; // not this value's fault: the run goes again
      // The same script returns the same kind of value: another attempt would only repeat its calls out.
      seal();
      const error = `Script returned a value that is not JSON (${describeError(err)})`;
      return { ok: false, error, ms: performance.now() - started, permanent: "result" };
    }
    return { ok: true, result: result.value, resultSize: result.size, ...seal(), ms: performance.now() - started };
  } catch (err) {
    seal();
    const permanent = isPermanent(err);
    return {
      ok: false,
      error: scriptError(err, permanent),
      ms: performance.now() - started,
      ...(permanent ? { permanent: "input" } : {}),
      ...(timedOut ? { timedOut: true } : {}),
    };
  } finally {
    clearTimeout(timer);
  }
}

/** The longest error a run keeps (characters). */
const MAX_ERROR_CHARS = 2000;
/** Sluice's folder: file URLs under it are named from it (`scripts/app/x.ts`), never with the server's own path. */
const ROOT = new URL("../", import.meta.url).href;
/** Sluice's own code, which a script's error may pass through (its `ctx`): not where the script went wrong. */
const OWN_CODE = /^(?:engine|core|store|actors|protocols)\//;

/**
 * What a script threw, as its run's error: the message, with where in the script it was thrown (`at scripts/app/x.ts:3:21`;
 * not for a `PermanentError`, whose message is for the sender), file paths from Sluice's folder.
 */
export function scriptError(err: unknown, permanent = false): string {
  const text = describeError(err).replaceAll(ROOT, "");
  const at = permanent ? null : scriptFrame(err);
  const where = at !== null && !text.includes(at) ? ` (at ${at})` : "";
  // A long message is cut, never where the script went wrong.
  const room = MAX_ERROR_CHARS - where.length;
  return (text.length > room ? `${text.slice(0, room - 1)}…` : text) + where;
}

/** The first place in the stack of `err` that is a script's code, from Sluice's folder; null if none. */
function scriptFrame(err: unknown): string | null {
  let stack: unknown;
  try {
    stack = (err as { stack?: unknown } | null)?.stack;
  } catch {
    return null; // a stack getter that throws: user code can throw anything
  }
  if (typeof stack !== "string") return null;
  for (const [, url, line, column] of stack.matchAll(/(file:\/\/\/[^\s()]+?):(\d+):(\d+)/g)) {
    if (!url!.startsWith(ROOT)) continue; // a dependency's code
    const path = url!.slice(ROOT.length);
    if (!OWN_CODE.test(path)) return `${path}:${line}:${column}`;
  }
  return null;
}

/** Whether a thrown value asks not to be tried again (`PermanentError`); false when asking throws. */
function isPermanent(err: unknown): boolean {
  try {
    return (err as { permanent?: unknown } | null)?.permanent === true;
  } catch {
    return false;
  }
}

/** The outcome of a run that failed in a way no run should (its runner threw): it fails, it is not lost. */
export function failedRun(err: unknown): Outcome {
  return { ok: false, error: `The run failed: ${describeError(err)}`, ms: 0 };
}
