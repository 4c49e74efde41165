import { sleep } from "../core/sleep.ts";

/**
 * Wakes the subscribers waiting for room in their send buffers. A wait first looks a few times
 * within milliseconds (a socket writes out a burst that fast), then joins one shared tick: a
 * thousand clients that read nothing cost one timer, not a thousand.
 */
export class RoomTicker {
  readonly #waiting = new Set<{ ready: () => boolean; until: number; resolve: (ready: boolean) => void }>();
  #timer: ReturnType<typeof setInterval> | undefined;
  #closed = false;

  constructor(private readonly tickMs = 50) {}

  /** Resolves true once `ready()` is, false after `waitMs` without it. */
  async until(ready: () => boolean, waitMs: number): Promise<boolean> {
    const until = Date.now() + waitMs;
    for (const ms of [1, 4, 10]) {
      if (ready()) return true;
      if (Date.now() >= until || this.#closed) return false;
      await sleep(ms);
    }
    if (ready()) return true;
    if (this.#closed) return false;
    return await new Promise<boolean>((resolve) => {
      this.#waiting.add({ ready, until, resolve });
      this.#timer ??= setInterval(() => this.#tick(), this.tickMs);
    });
  }

  /** Ends every wait (false) and the timer, for good. */
  close(): void {
    this.#closed = true;
    this.#stopTimer();
  }

  #stopTimer(): void {
    for (const w of this.#waiting) w.resolve(false);
    this.#waiting.clear();
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #tick(): void {
    const now = Date.now();
    for (const w of this.#waiting) {
      if (w.ready()) w.resolve(true);
      else if (now >= w.until) w.resolve(false);
      else continue;
      this.#waiting.delete(w);
    }
    if (this.#waiting.size === 0) this.#stopTimer();
  }
}
