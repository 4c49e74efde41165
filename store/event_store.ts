import type { NewEvent } from "./committer.ts";

/** An event as stored: its place in its stream and when it was recorded. */
export interface StoredEvent<T = unknown> {
  readonly stream: string;
  readonly seq: number;
  readonly type: string;
  readonly data: T;
  /** Commit time, ms since the epoch. */
  readonly at: number;
}

/** Result of an append: the seqs the events got. */
export interface AppendResult {
  readonly first: number;
  readonly last: number;
  readonly at: number;
}

/** The event store port: append-only per-stream logs. */
export interface EventStore {
  /**
   * Appends events to a stream, all or none. With `expectedHead`, fails with a
   * `ConcurrencyError` unless the stream is at that seq.
   */
  append(
    stream: string,
    events: readonly NewEvent[],
    options?: { readonly expectedHead?: number },
  ): Promise<AppendResult>;
  /** Reads up to `limit` events from seq `from` on, in order. */
  read(stream: string, from?: number, limit?: number): Promise<StoredEvent[]>;
  /** The seq of the last event (0 when empty). */
  head(stream: string): Promise<number>;
}

export type { NewEvent };
