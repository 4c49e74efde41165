import type { TaskResult } from "./partition_runner.ts";

/**
 * Results of recently finished tasks, in memory (the most recent `capacity`). Writing every
 * result to KV would double the writes of the hot path; a task that needed retries keeps its
 * record in KV too, so its attempt count survives a restart.
 */
export class RecentResults {
  readonly #results = new Map<string, TaskResult>();

  constructor(private readonly capacity = 10_000) {}

  set(taskId: string, result: TaskResult): void {
    this.#results.delete(taskId);
    this.#results.set(taskId, result);
    if (this.#results.size > this.capacity) this.#results.delete(this.#results.keys().next().value!);
  }

  get(taskId: string): TaskResult | undefined {
    return this.#results.get(taskId);
  }
}
