import type { Clock } from "./clock.ts";

/** Addresses remembered at most (a client with more addresses than this is not slowed down by it anyway). */
export const MAX_ADDRESSES = 50_000;

/**
 * Slows down guessing tokens: after `freeFailures` failed authentications from one address within
 * a minute, each further failure is answered only after a delay that doubles up to `maxDelayMs`,
 * and past `blockAfter` failures the address is refused outright until its minute passes.
 */
export class AuthThrottle {
  readonly #failures = new Map<string, { count: number; since: number }>();
  #prunedAt = -Infinity;

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
      if (this.#failures.size > MAX_ADDRESSES) this.#prune(now);
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

  /**
   * Forgets addresses whose minute is over (at most once a second: a scan of every address on each
   * new one would make each request cost as much), then, still over the bound, the oldest ones.
   */
  #prune(now: number): void {
    if (now - this.#prunedAt >= 1000) {
      this.#prunedAt = now;
      for (const [a, f] of this.#failures) if (now - f.since > this.options.windowMs) this.#failures.delete(a);
    }
    for (const a of this.#failures.keys()) {
      if (this.#failures.size <= MAX_ADDRESSES) break;
      this.#failures.delete(a); // a Map iterates in insertion order: the oldest first
    }
  }
}
