/** A wake-up: work up to `seq` is in `stream` (no seq: look anyway). */
export interface Wake {
  readonly stream: string;
  readonly seq?: number;
}

/**
 * The wake-up port: how committed work reaches the partition actors.
 * Locally a KV queue carries it (and the committing process is told at once); on Deno Deploy
 * the ingesting instance drains it itself.
 */
export interface Waker {
  /** Adds wake-ups to a commit, so the work and its wake-up land together; true if it added a mutation. */
  attach(op: Deno.AtomicOperation, wakes: readonly Wake[]): boolean;
  /** Told once the commit that carried these wake-ups has landed. */
  committed(wakes: readonly Wake[]): void;
  /** Wakes a stream after a delay (retry backoff); survives a restart where it can. */
  later(stream: string, delayMs: number): Promise<void>;
  /** Starts delivering wake-ups to the handler. */
  listen(handler: (wakes: readonly Wake[]) => void): void;
  /** Stops delivering wake-ups. */
  close(): void;
}
