import type { TaskResult } from "./partition_runner.ts";

const EVICT_CHUNK = 1000;

/**
 * Results of recently finished tasks, in memory (the most recent `capacity`, and up to a thousand
 * more). Writing every result to KV would double the writes of the hot path; a task that needed
 * retries keeps its record in KV too, so its attempt count survives a restart.
 */
export class RecentResults {
  readonly #results = new Map<string, TaskResult>();

  constructor(private readonly capacity = 10_000) {}

  set(taskId: string, result: TaskResult): void {
    this.#results.delete(taskId);
    this.#results.set(taskId, result);
    // Evicts in chunks: one iterator walk per chunk, not one per result (a Map's front fills with
    // deleted slots, which every `keys().next()` walks over again).
    if (this.#results.size <= this.capacity + EVICT_CHUNK) return;
    let excess = this.#results.size - this.capacity;
    for (const id of this.#results.keys()) {
      if (excess-- <= 0) break;
      this.#results.delete(id);
    }
  }

  get(taskId: string): TaskResult | undefined {
    return this.#results.get(taskId);
  }
}
