import {
  ConcurrencyError,
  ConflictError,
  PayloadTooLargeError,
  RateLimitedError,
  ScriptFailedError,
  SluiceError,
  UnavailableError,
  ValidationError,
} from "../core/errors.ts";
import type { Protocol } from "../core/envelope.ts";
import type { RateLimiter } from "../core/rate_limiter.ts";
import type { Committer } from "../store/committer.ts";
import { keys } from "../store/keys.ts";
import type { EffectPlanner, EffectSource } from "./effect_planner.ts";
import type { ScriptRequest } from "./script_api.ts";
import type { ScriptExecutor } from "./script_pool.ts";
import { MAX_KEPT_RESULT, type Outcome } from "./script_runner.ts";

export interface InlineRunnerOptions {
  readonly kv: Deno.Kv;
  readonly executor: ScriptExecutor;
  readonly planner: EffectPlanner;
  readonly committer: Committer;
  /** How long a call's id (`Idempotency-Key`) is remembered. */
  readonly dedupWindowMs: number;
  /** Several instances write: the id's key is checked in the commit. */
  readonly multiWriter?: boolean;
  /** `RATE_LIMIT`: a call is a message of its device, taken from the same bucket as ingest's. */
  readonly rateLimiter?: RateLimiter;
  /** Told of every run (metrics). */
  readonly onRun?: (method: string, outcome: Outcome) => void;
  /** Told of every call's end (metrics): answered after `ms`, or refused with `error`. */
  readonly onCall?: (protocol: Protocol, ms: number, error?: unknown) => void;
}

/** Runs of one call that may be interrupted by other scripts before it is answered as unavailable. */
const INTERRUPTED_RUNS = 3;

/** What a call with an id left behind: the answer every resend gets (unless it was too big to keep). */
interface Answered {
  readonly result?: unknown;
  readonly bytes?: number;
}

/**
 * Runs a public script for an HTTP (or WebSocket) call and answers with what it returned,
 * once its writes (tasks it queued, messages, readings) have landed. A call with an id runs once
 * within the dedup window: its id is stored with its writes, and a resend gets the first answer.
 */
export class InlineRunner {
  readonly #inflight = new Map<string, Promise<unknown>>();

  constructor(private readonly options: InlineRunnerOptions) {}

  /** Runs a public script for a device's call (HTTP `POST /<path>`, a WebSocket frame). */
  async callFor(
    protocol: Protocol,
    method: string,
    body: unknown,
    device: string,
    receivedAt: number,
    id?: string,
  ): Promise<unknown> {
    const start = performance.now();
    try {
      if (this.options.rateLimiter && !this.options.rateLimiter.take(device)) throw new RateLimitedError();
      const result = await this.#callFor(method, body, device, receivedAt, id);
      this.options.onCall?.(protocol, performance.now() - start);
      return result;
    } catch (err) {
      this.options.onCall?.(protocol, performance.now() - start, err);
      throw err;
    }
  }

  #callFor(method: string, body: unknown, device: string, receivedAt: number, id?: string): Promise<unknown> {
    const request: ScriptRequest = {
      method,
      body: body ?? null,
      params: body ?? null,
      device,
      attempt: 1,
      receivedAt: new Date(receivedAt).toISOString(),
    };
    if (id === undefined) return this.call(request, { device, receivedAt });
    const flight = `${device}\u0000${method}\u0000${id}`;
    const running = this.#inflight.get(flight);
    if (running) return running;
    const promise = this.#once(request, { device, receivedAt }, keys.inlineDedup(device, method, id)).finally(() =>
      this.#inflight.delete(flight)
    );
    this.#inflight.set(flight, promise);
    return promise;
  }

  async call(request: ScriptRequest, source: EffectSource, answered?: Deno.KvKey): Promise<unknown> {
    const outcome = await this.#run(request);
    if (!outcome.ok) {
      if (outcome.permanent === "input") throw new ValidationError(outcome.error);
      throw new ScriptFailedError(`Script "${request.method}" failed: ${outcome.error}`);
    }
    const plan = await this.options.planner.plan(outcome.effects, source, outcome.reads).catch((err) => {
      // A write the script asked for and Sluice refuses (a channel that does not exist or is Sluice's
      // own, an invalid name) is the script's mistake, not the caller's: said as such, naming the
      // script. Only a write over the size limit keeps its 413.
      if (err instanceof SluiceError && !(err instanceof PayloadTooLargeError)) {
        throw new ScriptFailedError(`Script "${request.method}" made a write Sluice refused: ${err.message}`);
      }
      throw err;
    });
    if (answered) {
      const bytes = outcome.resultSize;
      plan.sets.push({
        key: answered,
        value: (bytes <= MAX_KEPT_RESULT ? { result: outcome.result ?? null } : { bytes }) satisfies Answered,
        expireIn: this.options.dedupWindowMs,
      });
      if (this.options.multiWriter) plan.checks.push({ key: answered, versionstamp: null });
    }
    if (!plan.empty) plan.landed(await this.options.committer.write({ ...plan.toRequest(), urgent: true }));
    return outcome.result;
  }

  /**
   * Runs the script. A run interrupted by no fault of its own (another script's busy loop had the
   * worker replaced) runs again, up to INTERRUPTED_RUNS runs in all; then (or while Sluice stops,
   * which interrupts every run at once) the call is answered as unavailable.
   */
  async #run(request: ScriptRequest): Promise<Outcome> {
    for (let run = 1;; run++) {
      const [outcome] = await this.options.executor.run([request]);
      if (!outcome) throw new ScriptFailedError(`Script "${request.method}" did not run`);
      this.options.onRun?.(request.method, outcome);
      if (outcome.ok || !outcome.interrupted) return outcome;
      if (run >= INTERRUPTED_RUNS) {
        throw new UnavailableError(`Script "${request.method}" was interrupted (${outcome.error}); try again`);
      }
    }
  }

  async #once(request: ScriptRequest, source: EffectSource, key: Deno.KvKey): Promise<unknown> {
    const prior = await this.options.kv.get<Answered>(key);
    if (prior.value) return answerOf(prior.value);
    try {
      return await this.call(request, source, key);
    } catch (err) {
      // Another instance answered the same id first: its answer stands.
      const first = err instanceof ConcurrencyError ? (await this.options.kv.get<Answered>(key)).value : null;
      if (first) return answerOf(first);
      throw err;
    }
  }
}

/** The first answer, for a resend; one too big to keep is a 409 (the call ran, its writes landed). */
function answerOf(answered: Answered): unknown {
  if ("result" in answered) return answered.result;
  throw new ConflictError(
    `This Idempotency-Key was used: the call ran once, and its answer (${answered.bytes} bytes) was too big to keep`,
  );
}
