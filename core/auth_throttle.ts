import type { Clock } from "./clock.ts";

/**
 * Slows down guessing tokens: after `freeFailures` failed authentications from one address within
 * a minute, each further failure is answered only after a delay that doubles up to `maxDelayMs`,
 * and past `blockAfter` failures the address is refused outright until its minute passes.
 */
export class AuthThrottle {
  readonly #failures = new Map<string, { count: number; since: number }>();

  constructor(
    private readonly clock: Clock,
    private readonly options = { freeFailures: 10, blockAfter: 200, windowMs: 60_000, maxDelayMs: 5000 },
  ) {}

  /** True when the address failed so often that it is refused without checking. */
  blocked(address: string): boolean {
    const f = this.#current(address);
    return !!f && f.count >= this.options.blockAfter;
  }

  /** Records a failure; returns how long to wait before answering it (ms). */
  failed(address: string): number {
    const now = this.clock.now();
    let f = this.#current(address);
    if (!f) {
      f = { count: 0, since: now };
      this.#failures.set(address, f);
      if (this.#failures.size > 50_000) this.#prune(now);
    }
    f.count++;
    const over = f.count - this.options.freeFailures;
    return over <= 0 ? 0 : Math.min(this.options.maxDelayMs, 100 * 2 ** Math.min(over - 1, 10));
  }

  #current(address: string): { count: number; since: number } | undefined {
    const f = this.#failures.get(address);
    if (f && this.clock.now() - f.since > this.options.windowMs) {
      this.#failures.delete(address);
      return undefined;
    }
    return f;
  }

  #prune(now: number): void {
    for (const [a, f] of this.#failures) if (now - f.since > this.options.windowMs) this.#failures.delete(a);
  }
}
