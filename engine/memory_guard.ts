import { getHeapStatistics } from "node:v8";

const MiB = 2 ** 20;

/**
 * The process memory (RSS) past which a script run that holds its worker without yielding, and grew the memory
 * meanwhile, is taken for one allocating without end: half of V8's heap limit (a script's worker dies at that limit,
 * and takes the whole process with it) or of the machine's memory, whichever is less.
 */
export function defaultMemoryLimit(): number {
  const heap = getHeapStatistics().heap_size_limit;
  let machine = Infinity;
  try {
    machine = Deno.systemMemoryInfo().total;
  } catch {
    // not given here (a platform without it, or no --allow-sys): the heap limit alone
  }
  return Math.floor(Math.min(heap, machine) / 2);
}

/** The process's memory, and the part of it outside the main isolate's heap (workers, KV, buffers): what a worker grows. */
export interface MemorySample {
  readonly rss: number;
  readonly others: number;
}

export function sampleMemory(): MemorySample {
  const m = Deno.memoryUsage();
  return { rss: m.rss, others: m.rss - m.heapTotal - m.external };
}

/** How long a stopped worker's thread is given to end (Deno 2.5 ends it within about 2 s) before its growth counts. */
export const SETTLE_MS = 2500;

/**
 * What the pool does about its process's memory, looked at a few times a second:
 * - `ok`: under the limit;
 * - `stop-busy`: over it, and a worker's run has held its thread while the memory outside the main isolate grew by
 *   more than `growth` (or that memory nears an isolate's heap limit): that run is stopped, as a busy loop is (a run
 *   that computes without allocating is left be);
 * - `runaway`: a worker holding its thread was stopped (for its memory or its time), and, the memory over the limit,
 *   that outside the main isolate still grew by more than `growth` once the stop had time to settle, or it nears an
 *   isolate's heap limit: Deno 2.9 cannot stop a thread that does not yield, and one that keeps allocating takes the
 *   whole process down at its heap limit, so Sluice stops itself first;
 * - `over`: over it with nothing to blame (Sluice's own memory): said, at most once a minute.
 */
export type MemoryVerdict = "ok" | "stop-busy" | "runaway" | "over";

export class MemoryGuard {
  /** Growth of the memory outside the main isolate taken for a script allocating without end. */
  readonly growth: number;
  /** Memory outside the main isolate near a worker's heap limit (where V8 would abort the process). */
  readonly hard: number;
  /** A worker holding its thread was stopped at `at`; `baseline`: the memory outside the main isolate once it settled. */
  #stopped: { at: number; baseline?: number } | undefined;

  constructor(readonly limit: number) {
    this.growth = Math.max(256 * MiB, limit / 4);
    this.hard = Math.floor(getHeapStatistics().heap_size_limit * 0.6);
  }

  /** A worker holding its thread was stopped: on Deno 2.9 its thread may run on. */
  stopped(now: number): void {
    this.#stopped = { at: now };
  }

  /** `busyGrowth`: how much the memory outside the main isolate grew while the longest-silent busy worker was silent. */
  verdict(m: MemorySample, now: number, busyGrowth: number | undefined): MemoryVerdict {
    const s = this.#stopped;
    if (s && s.baseline === undefined && now - s.at >= SETTLE_MS) s.baseline = m.others;
    const nearHeapLimit = m.others > this.hard;
    if (busyGrowth !== undefined && (nearHeapLimit || (m.rss > this.limit && busyGrowth > this.growth))) {
      return "stop-busy";
    }
    if (s && nearHeapLimit) return "runaway";
    if (m.rss <= this.limit) return "ok";
    if (s && s.baseline !== undefined && m.others - s.baseline > this.growth) return "runaway";
    return "over";
  }
}
