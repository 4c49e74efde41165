/**
 * Lets at most `limit` lines of one kind through per `windowMs`; the rest are counted and told in
 * one line once the window is over, so a broken script that kills every task cannot flood the log.
 */
export class LogBudget {
  #windowStart = -Infinity;
  #said = 0;
  #held = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly log: (line: string) => void,
    private readonly limit: number,
    private readonly windowMs: number,
    /** The line that tells how many were held back. */
    private readonly summary: (held: number, windowMs: number) => string,
    private readonly now: () => number = Date.now,
  ) {}

  say(line: string): void {
    const now = this.now();
    if (now - this.#windowStart >= this.windowMs) {
      this.flush();
      this.#windowStart = now;
      this.#said = 0;
    }
    if (this.#said < this.limit) {
      this.#said++;
      this.log(line);
      return;
    }
    if (this.#held++ === 0) {
      this.#timer = setTimeout(() => this.flush(), this.windowMs - (now - this.#windowStart));
      Deno.unrefTimer(this.#timer);
    }
  }

  /** Tells what was held back so far (at the window's end, and on stop). */
  flush(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#held > 0) this.log(this.summary(this.#held, this.windowMs));
    this.#held = 0;
  }
}
