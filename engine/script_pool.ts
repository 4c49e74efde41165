import { describeError } from "../core/errors.ts";
import type { ScriptManifest } from "./manifest.ts";
import type { ScriptRequest, ScriptSettings } from "./script_api.ts";
import type { ContextHost } from "./script_context.ts";
import { failedRun, type Outcome, runInOrder, ScriptLoader } from "./script_runner.ts";
import type { FromWorker, ToWorker } from "./worker_protocol.ts";
import { perTick } from "./per_tick.ts";
import { defaultMemoryLimit, MemoryGuard, type MemorySample, sampleMemory } from "./memory_guard.ts";

/** Told of each run's end in a batch, as it comes. */
export type OutcomeHook = (index: number, outcome: Outcome) => void;

/** Runs scripts: in order, stopping after the first failure. */
export interface ScriptExecutor {
  /** `onOutcome(i, outcome)` as each run ends (a worker's may come a tick late, several at once). */
  run(requests: readonly ScriptRequest[], onOutcome?: OutcomeHook): Promise<Outcome[]>;
  /** Lets the runs in progress finish and starts no new one; their batches end early. */
  halt(): void;
  /** False where a busy loop cannot be stopped (no Workers). */
  readonly isolated: boolean;
  close(): void;
}

export interface ExecutorOptions {
  readonly manifest: ScriptManifest;
  /** Module that calls `serveWorker` with the same manifest. */
  readonly workerUrl: URL;
  readonly settings: ScriptSettings;
  readonly timeoutMs: number;
  readonly httpTimeoutMs?: number;
  readonly getDocument: ContextHost["getDocument"];
  readonly workers?: number;
  /** Process memory (RSS, bytes) past which a run holding its worker without yielding is stopped (`MEMORY_LIMIT_MB`). */
  readonly memoryLimit?: number;
  /** Told once when a stopped worker's thread keeps the memory over the limit: Sluice must stop (see `memory_guard.ts`). */
  readonly onRunaway?: (message: string) => void;
  /** Batches one worker runs side by side (they interleave while awaiting I/O). */
  readonly concurrencyPerWorker?: number;
  readonly log?: (line: string) => void;
}

/** A Worker pool where possible, else in-process runs with a timeout (and a warning). */
export function createExecutor(options: ExecutorOptions): ScriptExecutor {
  if (typeof Worker === "undefined" || options.workers === 0) return new InProcessExecutor(options);
  try {
    return new WorkerPool(options);
  } catch (err) {
    options.log?.(`Script workers unavailable (${describeError(err)}); running scripts in-process`);
    return new InProcessExecutor(options);
  }
}

interface Batch {
  readonly requests: readonly ScriptRequest[];
  readonly outcomes: Outcome[];
  readonly resolve: (o: Outcome[]) => void;
  readonly onOutcome?: OutcomeHook;
  /** The worker said it began the batch's runs (one may be running synchronously, silencing the worker). */
  started: boolean;
  currentStart: number;
}

interface Slot {
  worker: Worker;
  /** False until the worker has loaded its scripts; the time limits count from then. */
  ready: boolean;
  spawnedAt: number;
  /** When the worker last said anything (it beats every 100 ms while its thread is free). */
  lastHeard: number;
  /** Whether a message Sluice does not know was logged since the worker started. */
  strangeLogged: boolean;
  readonly batches: Map<number, Batch>;
  /** The memory outside the main isolate when the worker was last heard from, or idle (see `#watchMemory`). */
  quietOthers: number;
  /** Batches to post to the worker at the end of this tick (one message for all of them). */
  readonly outbox: ReturnType<typeof perTick<{ batch: number; requests: readonly ScriptRequest[] }>>;
}

const GRACE_MS = 500;
/** A worker silent this long with a run under way holds its thread (a busy run): blamed when memory passes the limit. */
const BUSY_MS = 1000;
/** How often the memory is looked at. */
const MEMORY_EVERY_MS = 250;
const STARTUP_LIMIT_MS = 30_000;
/** A worker silent this long with no run under way has gone (a script closed it or exited): replaced. */
const SILENT_MS = 2000;

/**
 * Who fails when a worker is replaced: every batch, the run overdue the longest (`culprit`), the run begun first on a
 * worker holding its thread while memory passed its limit (`memory`), or none (all go again).
 */
type Blame = "all" | "culprit" | "memory" | "none";

/** Scripts in a small pool of Workers; a worker stuck in a busy loop is terminated and replaced. */
export class WorkerPool implements ScriptExecutor {
  readonly isolated = true;
  readonly #slots: Slot[] = [];
  readonly #waiting: (() => void)[] = [];
  readonly #watchdog: ReturnType<typeof setInterval>;
  readonly #perWorker: number;
  #nextBatch = 0;
  #lastCheck = 0;
  #closed = false;
  /** Load failures said so far (script and error): each once, from whichever worker met it first. */
  readonly #loadFailures = new Set<string>();
  readonly #guard: MemoryGuard;
  #memoryAt = 0;
  #overSaidAt = -Infinity;
  #runawaySaid = false;

  constructor(private readonly options: ExecutorOptions) {
    this.#perWorker = options.concurrencyPerWorker ?? 32;
    this.#guard = new MemoryGuard(options.memoryLimit ?? defaultMemoryLimit());
    for (let i = 0; i < (options.workers ?? 2); i++) {
      const slot: Slot = {
        worker: null as unknown as Worker,
        ready: false,
        spawnedAt: 0,
        lastHeard: 0,
        strangeLogged: false,
        quietOthers: 0,
        batches: new Map(),
        outbox: perTick((runs) => slot.worker.postMessage({ t: "run", runs } satisfies ToWorker)),
      };
      this.#spawn(slot);
      this.#slots.push(slot);
    }
    this.#watchdog = setInterval(() => this.#check(), 100);
  }

  async run(requests: readonly ScriptRequest[], onOutcome?: OutcomeHook): Promise<Outcome[]> {
    if (requests.length === 0) return [];
    if (this.#closed) return [interrupted("Sluice is stopping")];
    let slot = this.#pick();
    while (!slot) {
      await new Promise<void>((r) => this.#waiting.push(r));
      if (this.#closed) return requests.slice(0, 1).map(() => interrupted("Sluice is stopping"));
      slot = this.#pick();
    }
    const id = this.#nextBatch++;
    const now = performance.now();
    const done = new Promise<Outcome[]>((resolve) => {
      slot.batches.set(id, { requests, outcomes: [], resolve, onOutcome, started: false, currentStart: now });
    });
    slot.outbox.push({ batch: id, requests });
    return done;
  }

  halt(): void {
    for (const slot of this.#slots) slot.worker.postMessage({ t: "halt" } satisfies ToWorker);
  }

  close(): void {
    this.#closed = true;
    clearInterval(this.#watchdog);
    for (const slot of this.#slots) {
      slot.worker.terminate();
      for (const b of slot.batches.values()) b.resolve([...b.outcomes, interrupted("Sluice is stopping")]);
      slot.batches.clear();
      slot.outbox.clear();
    }
    for (const w of this.#waiting.splice(0)) w();
  }

  #pick(): Slot | undefined {
    let best: Slot | undefined;
    for (const s of this.#slots) {
      if (s.batches.size < this.#perWorker && (!best || s.batches.size < best.batches.size)) best = s;
    }
    return best;
  }

  #spawn(slot: Slot): void {
    const worker = new Worker(this.options.workerUrl, { type: "module" });
    slot.worker = worker;
    slot.ready = false;
    slot.spawnedAt = slot.lastHeard = performance.now();
    slot.strangeLogged = false;
    try {
      slot.quietOthers = sampleMemory().others;
    } catch {
      // not given here: the memory guard does not look either
    }
    worker.onmessage = (e: MessageEvent<FromWorker>) => {
      if (slot.worker !== worker) return;
      slot.lastHeard = performance.now();
      try {
        this.#onMessage(slot, e.data);
      } catch (err) {
        // Only a script can have sent it (through the worker's global scope): the pool goes on.
        this.#strange(slot, `${describeError(err)}`);
      }
    };
    worker.onerror = (e) => {
      e.preventDefault();
      this.#restart(slot, `Script worker failed: ${e.message}`, "all");
    };
    worker.postMessage(
      {
        t: "init",
        settings: this.options.settings,
        scripts: Object.keys(this.options.manifest),
        timeoutMs: this.options.timeoutMs,
        httpTimeoutMs: this.options.httpTimeoutMs ?? 10_000,
      } satisfies ToWorker,
    );
  }

  #onMessage(slot: Slot, m: FromWorker): void {
    switch (m.t) {
      case "many":
        for (const one of m.messages) this.#onMessage(slot, one);
        break;
      case "started": {
        const b = slot.batches.get(m.batch);
        if (b) b.started = true;
        break;
      }
      case "outcome": {
        const b = slot.batches.get(m.batch);
        if (b) b.outcomes[m.index] = m.outcome, b.currentStart = performance.now(), b.onOutcome?.(m.index, m.outcome);
        break;
      }
      case "end": {
        const b = slot.batches.get(m.batch);
        slot.batches.delete(m.batch);
        if (b && m.last) b.outcomes[m.last.index] = m.last.outcome;
        b?.resolve(b.outcomes);
        this.#waiting.shift()?.();
        break;
      }
      case "doc":
        this.options.getDocument(m.collection, m.id).then(
          (doc) =>
            slot.worker.postMessage(
              { t: "doc", call: m.call, value: doc.value, versionstamp: doc.versionstamp } satisfies ToWorker,
            ),
          (err) => slot.worker.postMessage({ t: "doc", call: m.call, error: describeError(err) } satisfies ToWorker),
        );
        break;
      case "ready":
        // Each said once: a manifest entry that points nowhere shows at start-up; a worker started later (one
        // replaced) loads the scripts from disk again, so a script broken by an edit since shows then.
        for (const f of m.failed) {
          const said = `${f.script}\n${f.error}`;
          if (this.#loadFailures.has(said)) continue;
          this.#loadFailures.add(said);
          this.options.log?.(`Script ${f.script} cannot be loaded: ${f.error} (fix it, then restart Sluice)`);
        }
        slot.ready = true;
        for (const b of slot.batches.values()) b.currentStart = performance.now();
        break;
      case "beat":
        break;
      case "stray":
        this.options.log?.(`A script's timer or promise failed where no run could catch it: ${m.error}`);
        break;
      case "replace":
        this.#restart(slot, m.reason, "none"); // its runs under way go again, uncounted, on the new worker
        break;
      default: {
        const never: never = m;
        this.#strange(slot, `an unknown message of type ${typeof (never as { t?: unknown } | null)?.t}`);
      }
    }
  }

  #strange(slot: Slot, what: string): void {
    if (slot.strangeLogged) return;
    slot.strangeLogged = true;
    this.options.log?.(`Script worker sent what Sluice does not read (${what}); ignored (a script posting messages?)`);
  }

  /**
   * A worker whose current run is past its limit is blocked (async timeouts end in the worker); one silent with no
   * batch begun (a run going on synchronously silences it too, within its limit) has gone.
   */
  #check(): void {
    const now = performance.now();
    // Late itself, the main thread was busy: the workers' messages queued meanwhile are heard first.
    const late = now - this.#lastCheck > 500;
    this.#lastCheck = now;
    if (now - this.#memoryAt >= MEMORY_EVERY_MS) this.#memoryAt = now, this.#watchMemory(now, late);
    for (const slot of this.#slots) {
      if (!slot.ready) {
        if (now - slot.spawnedAt > STARTUP_LIMIT_MS) this.#restart(slot, "Script worker did not start in time", "all");
        continue;
      }
      if (
        !late && now - slot.lastHeard > SILENT_MS &&
        ![...slot.batches.values()].some((b) => b.started)
      ) {
        this.#restart(
          slot,
          "Script worker stopped answering (a script closed it or exited); its runs go again",
          "none",
        );
        continue;
      }
      if (late) continue; // an overdue run's end may be among the messages not heard yet
      for (const b of slot.batches.values()) {
        if (now - b.currentStart > this.options.timeoutMs + GRACE_MS) {
          this.#restart(
            slot,
            `Script ran past its time limit of ${this.options.timeoutMs} ms without yielding and was stopped (busy ` +
              `loop?)`,
            "culprit",
          );
          break;
        }
      }
    }
  }

  /**
   * Stops a run that holds its worker while memory passes the limit and grows; asks Sluice to stop when a stopped one's
   * thread runs on allocating (see `MemoryGuard`). `late`: the workers' messages may not all be heard yet, so no run is
   * taken for a busy one.
   */
  #watchMemory(now: number, late: boolean): void {
    let m: MemorySample;
    try {
      m = sampleMemory();
    } catch {
      return; // not given here
    }
    let busy: Slot | undefined;
    for (const slot of this.#slots) {
      const running = slot.ready && [...slot.batches.values()].some((b) => b.started);
      // What the memory outside the main isolate was while each worker was last heard from (or idle).
      if (!running || now - slot.lastHeard <= BUSY_MS) slot.quietOthers = m.others;
      else if (!late && (busy === undefined || slot.quietOthers < busy.quietOthers)) busy = slot;
    }
    const mib = (n: number) => `${Math.round(n / 2 ** 20)} MiB`;
    const limit = this.#guard.limit;
    switch (this.#guard.verdict(m, now, busy && m.others - busy.quietOthers)) {
      case "stop-busy":
        this.#restart(
          busy!,
          `Script was stopped: Sluice's memory passed ${mib(limit)} (MEMORY_LIMIT_MB), growing by ${
            mib(m.others - busy!.quietOthers)
          } while it held its worker without yielding (allocating without end?)`,
          "memory",
        );
        break;
      case "runaway": {
        if (this.#runawaySaid) break;
        this.#runawaySaid = true;
        const message = `Sluice's memory is ${mib(m.rss)}, over ${mib(limit)} (MEMORY_LIMIT_MB), and still growing ` +
          "since a script's worker was stopped for holding its thread: on Deno 2.9 such a thread runs on. Sluice " +
          "stops before the process runs out of memory: start it again (the run that did it failed; the next start " +
          "runs the tasks it resumes one at a time, so that a script that does it again is found)";
        if (this.options.onRunaway) this.options.onRunaway(message);
        else this.options.log?.(message);
        break;
      }
      case "over":
        if (now - this.#overSaidAt < 60_000) break;
        this.#overSaidAt = now;
        this.options.log?.(
          `Sluice's memory is ${mib(m.rss)}, over ${mib(limit)} (MEMORY_LIMIT_MB), with no script run growing it`,
        );
    }
  }

  /**
   * Replaces a worker. With `onlyCulpritFails`, the run of the batch overdue the longest fails with
   * `reason` (a busy loop blocks the worker from its start, so the batches handed over after it
   * waited behind it, overdue too but not at fault), and the others were only interrupted. The
   * main thread cannot see which run loops: when an async run started earlier and was awaiting, it
   * is the one blamed, and the loop's run goes again (and is blamed the next time, when it runs
   * alone or first). Before, every overdue run failed. The culprit of a worker that held no other batch is
   * surely the loop: its run is not retried (it would loop again, and take the worker, and on Deno 2.9 a core, again).
   */
  #restart(slot: Slot, reason: string, blame: Blame): void {
    const onlyCulpritFails = blame === "culprit" || blame === "memory";
    const surely = onlyCulpritFails && slot.batches.size === 1;
    if (surely) reason += `; not retried: it would ${blame === "memory" ? "do it" : "loop"} again`;
    if (onlyCulpritFails) this.#guard.stopped(performance.now());
    slot.worker.terminate();
    const now = performance.now();
    let culprit: Batch | undefined;
    for (const b of slot.batches.values()) {
      const suspect = blame === "memory" ? b.started : now - b.currentStart > this.options.timeoutMs + GRACE_MS;
      if (suspect && b.currentStart <= (culprit?.currentStart ?? now)) culprit = b;
    }
    for (const b of slot.batches.values()) {
      const failed = blame === "all" || (onlyCulpritFails && b === culprit);
      b.resolve([
        ...b.outcomes,
        failed
          ? {
            ok: false,
            error: reason,
            ms: now - b.currentStart,
            ...(blame === "culprit" ? { timedOut: true } : {}),
            ...(surely ? { permanent: "result" as const } : {}),
          }
          : interrupted(reason),
      ]);
    }
    slot.batches.clear();
    slot.outbox.clear();
    // The log names the run (the task's own error needs not: its task is known where it is read).
    const run = onlyCulpritFails ? culprit?.requests[culprit.outcomes.length] : undefined;
    this.options.log?.(run === undefined ? reason : reason.replace(/^Script /, `Script ${runName(run)} `));
    if (!this.#closed) this.#spawn(slot);
    for (const w of this.#waiting.splice(0, this.#perWorker)) w();
  }
}

/** `blog/queues/processor (task dC9i….2, attempt 1)`, or `(a call, …)` for a public script's call. */
function runName(run: ScriptRequest): string {
  return `${run.method} (${run.taskId === undefined ? "a call" : `task ${run.taskId}`}, attempt ${run.attempt})`;
}

/** Runs scripts on the main thread with a timeout; a busy loop cannot be stopped here. */
export class InProcessExecutor implements ScriptExecutor {
  readonly isolated = false;
  readonly #loader: ScriptLoader;
  readonly #host: ContextHost;
  #halted = false;

  constructor(private readonly options: ExecutorOptions) {
    this.#loader = new ScriptLoader(options.manifest);
    this.#host = {
      scripts: new Set(Object.keys(options.manifest)),
      settings: options.settings,
      httpTimeoutMs: options.httpTimeoutMs ?? 10_000,
      getDocument: options.getDocument,
    };
  }

  async run(requests: readonly ScriptRequest[], onOutcome?: OutcomeHook): Promise<Outcome[]> {
    const outcomes: Outcome[] = [];
    await runInOrder(
      requests,
      this.#loader,
      this.#host,
      this.options.timeoutMs,
      (i, o) => (outcomes[i] = o, onOutcome?.(i, o)),
      () => this.#halted,
    ).catch((err) => {
      // As a worker does: the run it stopped at fails, or its lane would run it again at once.
      outcomes.push(failedRun(err));
    });
    return outcomes;
  }

  halt(): void {
    this.#halted = true;
  }

  close(): void {}
}

function interrupted(error: string): Outcome {
  return { ok: false, error, ms: 0, interrupted: true };
}
