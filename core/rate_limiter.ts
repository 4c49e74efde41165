import type { Clock } from "./clock.ts";

/** A token bucket per key: `rate` tokens a second, bursts up to `burst`. */
export class RateLimiter {
  readonly #buckets = new Map<string, { tokens: number; at: number }>();

  constructor(private readonly rate: number, private readonly burst: number, private readonly clock: Clock) {}

  /** Takes a token for `key`; false when the bucket is empty. */
  take(key: string): boolean {
    const now = this.clock.now();
    let b = this.#buckets.get(key);
    if (!b) {
      b = { tokens: this.burst, at: now };
      this.#buckets.set(key, b);
      if (this.#buckets.size > 100_000) this.#prune(now);
    }
    // A clock set back refills nothing (rather than draining the bucket for as long as it went back).
    b.tokens = Math.min(this.burst, b.tokens + (Math.max(0, now - b.at) / 1000) * this.rate);
    b.at = now;
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

  #prune(now: number): void {
    for (const [k, b] of this.#buckets) {
      if (b.tokens + ((now - b.at) / 1000) * this.rate >= this.burst) this.#buckets.delete(k);
    }
  }
}
