import type { Clock } from "../core/clock.ts";
import { systemClock } from "../core/clock.ts";
import { ConcurrencyError } from "../core/errors.ts";
import type { AppendResult, EventStore, NewEvent, StoredEvent } from "./event_store.ts";

/** An event store in memory, for tests and as the reference the KV store is held to. */
export class MemoryEventStore implements EventStore {
  readonly #streams = new Map<string, StoredEvent[]>();

  constructor(private readonly clock: Clock = systemClock) {}

  append(
    stream: string,
    events: readonly NewEvent[],
    options: { readonly expectedHead?: number } = {},
  ): Promise<AppendResult> {
    const log = this.#streams.get(stream) ?? [];
    if (options.expectedHead !== undefined && options.expectedHead !== log.length) {
      return Promise.reject(ConcurrencyError.head(stream, options.expectedHead, log.length));
    }
    const at = this.clock.now();
    const first = log.length + 1;
    for (const e of events) log.push({ stream, seq: log.length + 1, type: e.type, data: e.data, at });
    this.#streams.set(stream, log);
    return Promise.resolve({ first, last: log.length, at });
  }

  read(stream: string, from = 1, limit = 1000): Promise<StoredEvent[]> {
    const log = this.#streams.get(stream) ?? [];
    return Promise.resolve(log.slice(Math.max(0, from - 1), Math.max(0, from - 1) + limit));
  }

  head(stream: string): Promise<number> {
    return Promise.resolve(this.#streams.get(stream)?.length ?? 0);
  }
}
