/**
 * Runs jobs one after another per key and concurrently across keys: a device's messages are
 * committed in delivery order while other devices go on.
 */
export class OrderedLanes {
  readonly #tails = new Map<string, Promise<void>>();

  /** Queues `job` behind the earlier jobs of `key`; a failing job does not stop the lane. */
  run(key: string, job: () => Promise<void>): Promise<void> {
    const prev = this.#tails.get(key);
    const next = (prev ?? Promise.resolve()).then(job).catch(() => {});
    this.#tails.set(key, next);
    next.then(() => {
      if (this.#tails.get(key) === next) this.#tails.delete(key);
    });
    return next;
  }

  /** Keys with work queued or running. */
  get busy(): number {
    return this.#tails.size;
  }

  /** Resolves once every job queued so far has finished. */
  async idle(): Promise<void> {
    while (this.#tails.size > 0) await Promise.all([...this.#tails.values()]);
  }
}
