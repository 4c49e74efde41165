/** One `basic.ack` to send: `multiple` acks every outstanding delivery up to `tag`. */
export interface Ack {
  readonly tag: number;
  readonly multiple: boolean;
}

/**
 * Pipelined acks for one channel. Deliveries finish out of order (devices run concurrently), so
 * `take()` acks the finished run at the low end with one `multiple` ack and the finished ones above
 * a gap one by one: no delivery waits for a slow neighbour, and no tag is acked twice.
 */
export class AckWindow {
  #order: number[] = []; // outstanding tags in delivery order; acked ones are skipped lazily
  #start = 0;
  readonly #done = new Set<number>();
  readonly #ackedAboveGap = new Set<number>();

  /** Notes a delivery (tags grow on a channel). */
  track(tag: number): void {
    this.#order.push(tag);
  }

  /** Marks a delivery as finished (committed, or dead-lettered and confirmed). */
  done(tag: number): void {
    this.#done.add(tag);
  }

  /** Deliveries not yet acked. */
  get outstanding(): number {
    return this.#order.length - this.#start - this.#ackedAboveGap.size;
  }

  /** Whether `take()` has something to send. */
  get pending(): boolean {
    return this.#done.size > 0;
  }

  /** The acks that cover every finished delivery. */
  take(): Ack[] {
    const acks: Ack[] = [];
    let upTo = -1, run = 0;
    while (this.#start < this.#order.length) {
      const tag = this.#order[this.#start]!;
      if (this.#ackedAboveGap.delete(tag)) {
        this.#start++;
        continue;
      }
      if (!this.#done.delete(tag)) break;
      upTo = tag;
      run++;
      this.#start++;
    }
    if (upTo >= 0) acks.push({ tag: upTo, multiple: run > 1 });
    for (const tag of this.#done) {
      acks.push({ tag, multiple: false });
      this.#ackedAboveGap.add(tag);
    }
    this.#done.clear();
    if (this.#start > 1024 && this.#start * 2 > this.#order.length) {
      this.#order = this.#order.slice(this.#start);
      this.#start = 0;
    }
    return acks;
  }
}
