import type { TaskResult } from "./partition_runner.ts";

const EVICT_CHUNK = 1000;

/**
 * Results of recently finished tasks, in memory: the most recent `capacity` (and up to a thousand
 * more), within `maxSize` characters of JSON in all, so a script that returns big results cannot
 * fill the memory. Writing every result to KV would double the writes of the hot path; a task that
 * needed retries keeps its record in KV too, so its attempt count survives a restart.
 */
export class RecentResults {
  readonly #results = new Map<string, { readonly result: TaskResult; readonly size: number }>();
  #size = 0;

  constructor(private readonly capacity = 10_000, private readonly maxSize = 64 * 1024 * 1024) {}

  /** `size`: the result's JSON size (characters). */
  set(taskId: string, result: TaskResult, size: number): void {
    this.#forget(taskId);
    this.#results.set(taskId, { result, size });
    this.#size += size;
    // Evicts in chunks: one iterator walk per chunk, not one per result (a Map's front fills with
    // deleted slots, which every `keys().next()` walks over again).
    if (this.#results.size <= this.capacity + EVICT_CHUNK && this.#size <= this.maxSize) return;
    let excess = this.#results.size - this.capacity;
    for (const id of this.#results.keys()) {
      if (excess <= 0 && this.#size <= this.maxSize * 0.9) break;
      if (id === taskId) break; // the newest stays, whatever its size
      this.#forget(id);
      excess--;
    }
  }

  get(taskId: string): TaskResult | undefined {
    return this.#results.get(taskId)?.result;
  }

  #forget(taskId: string): void {
    const kept = this.#results.get(taskId);
    if (!kept) return;
    this.#results.delete(taskId);
    this.#size -= kept.size;
  }
}
