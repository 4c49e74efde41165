import { getHeapStatistics } from "node:v8";

/**
 * The process memory (RSS) past which a script run that holds its worker without yielding is taken for one allocating
 * without end: half of V8's heap limit (a script's worker dies at that limit, and takes the whole process with it) or
 * of the machine's memory, whichever is less.
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

/** The memory at which Sluice stops itself when a stopped script's thread keeps allocating (see `MemoryVerdict`). */
export function hardMemoryLimit(limit: number): number {
  return Math.min(2 * limit, Math.floor(getHeapStatistics().heap_size_limit * 0.75));
}

/** How long memory may stay over the limit, with a stopped worker's thread about, before Sluice stops itself. */
export const RUNAWAY_MS = 3000;

/**
 * What the pool does about its process's memory, looked at a few times a second:
 * - `ok`: under the limit;
 * - `stop-busy`: over it while a worker's run holds its thread: that run is stopped, as a busy loop is;
 * - `runaway`: over it for `RUNAWAY_MS` (or past the hard limit) after a worker holding its thread was stopped (for its
 *   memory or its time): Deno 2.9 cannot stop a thread that does not yield, and one that keeps allocating would take
 *   the whole process down, so Sluice stops itself cleanly first;
 * - `over`: over it with no script to blame (Sluice's own memory): said, at most once a minute.
 */
export type MemoryVerdict = "ok" | "stop-busy" | "runaway" | "over";

export function memoryVerdict(
  rss: number,
  limit: number,
  now: number,
  state: { readonly busyWorker: boolean; readonly stoppedBusy: boolean; readonly overSince: number },
): MemoryVerdict {
  if (rss <= limit) return "ok";
  if (state.busyWorker) return "stop-busy";
  if (state.stoppedBusy && (now - state.overSince > RUNAWAY_MS || rss > hardMemoryLimit(limit))) return "runaway";
  return "over";
}
