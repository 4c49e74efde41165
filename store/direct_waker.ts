import type { Wake, Waker } from "../core/waker.ts";

/**
 * Wake-ups without KV queues (Deno Deploy has none): the instance that committed the work is told
 * at once and drains it; delayed wake-ups are timers (a restart loses them, the cron sweep finds
 * the work).
 */
export class DirectWaker implements Waker {
  #handler: ((wakes: readonly Wake[]) => void) | null = null;
  readonly #timers = new Set<ReturnType<typeof setTimeout>>();

  attach(_op: Deno.AtomicOperation, _wakes: readonly Wake[]): boolean {
    return false;
  }

  committed(wakes: readonly Wake[]): void {
    this.#handler?.(wakes);
  }

  later(stream: string, delayMs: number): Promise<void> {
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      this.#handler?.([{ stream }]);
    }, Math.max(0, delayMs));
    this.#timers.add(timer);
    return Promise.resolve();
  }

  listen(handler: (wakes: readonly Wake[]) => void): void {
    this.#handler = handler;
  }

  close(): void {
    this.#handler = null;
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
  }
}
