/**
 * Characters of WebSocket frames received and not started yet, counted across every session of a
 * server: Deno reads frames as fast as a client sends them, so without a shared bound a few hundred
 * clients that send faster than their frames are handled hold gigabytes (one held 49 MB).
 */
export class WaitingBudget {
  #used = 0;

  constructor(readonly max: number) {}

  /** Characters held now. */
  get used(): number {
    return this.#used;
  }

  /** Takes `n` characters; false (nothing taken) when they do not fit. */
  take(n: number): boolean {
    if (this.#used + n > this.max) return false;
    this.#used += n;
    return true;
  }

  /** Gives back characters taken. */
  give(n: number): void {
    this.#used -= n;
  }
}
