import type { Committer, NewEvent } from "./committer.ts";
import type { AppendResult, EventStore, StoredEvent } from "./event_store.ts";
import { trueHead } from "./heads.ts";
import { keys } from "./keys.ts";
import type { ReadBatcher } from "./read_batcher.ts";

interface EventValue {
  readonly type: string;
  readonly data: unknown;
  readonly at: number;
}

/** The event store on Deno KV: `["ev", stream, seq]` per event plus a head key per stream. */
export class KvEventStore implements EventStore {
  constructor(private readonly kv: Deno.Kv, private readonly committer: Committer) {}

  async append(
    stream: string,
    events: readonly NewEvent[],
    options: { readonly expectedHead?: number } = {},
  ): Promise<AppendResult> {
    const res = await this.committer.write({
      appends: events.map((event) => ({ stream, event })),
      expectedHeads: options.expectedHead === undefined ? undefined : { [stream]: options.expectedHead },
    });
    const seqs = res.positions.map((p) => p.seq);
    return { first: seqs[0] ?? 0, last: seqs.at(-1) ?? 0, at: res.at };
  }

  async read(stream: string, from = 1, limit = 1000): Promise<StoredEvent[]> {
    await this.committer.flush(); // events acked from the inbox reach their keys
    return await readEvents(this.kv, stream, from, limit);
  }

  async head(stream: string): Promise<number> {
    await this.committer.flush();
    return await trueHead(this.kv, stream);
  }
}

/** Reads a range of a stream straight from KV. */
export async function readEvents<T = unknown>(
  kv: Deno.Kv,
  stream: string,
  from: number,
  limit: number,
  to = Number.MAX_SAFE_INTEGER,
): Promise<StoredEvent<T>[]> {
  const out: StoredEvent<T>[] = [];
  if (limit <= 0 || to < from) return out;
  const iter = kv.list<EventValue>({
    start: keys.event(stream, Math.max(1, from)),
    end: keys.event(stream, to + 1),
  }, { limit, batchSize: Math.min(limit, 500) });
  for await (const e of iter) {
    const seq = e.key[2] as number;
    out.push({ stream, seq, type: e.value.type, data: e.value.data as T, at: e.value.at });
  }
  return out;
}

/**
 * A stream's events from `from` as a reader must see them where they go through the inbox: those
 * acked but not yet moved (from the committer's memory) with those at their keys. Memory is read
 * first, so an event whose move lands in between is at its key by then, and counted once.
 */
export async function readLog(
  kv: Deno.Kv,
  committer: Committer,
  stream: string,
  from: number,
  limit: number,
  reads?: ReadBatcher,
): Promise<StoredEvent[]> {
  const waiting = committer.unmovedFrom(stream, from, limit);
  const stored = await mayHoldFrom(committer, stream, from, reads) ? await readEvents(kv, stream, from, limit) : [];
  if (waiting.length === 0) return stored;
  const bySeq = new Map<number, StoredEvent>(stored.map((e) => [e.seq, e]));
  for (const e of waiting) if (!bySeq.has(e.seq)) bySeq.set(e.seq, e);
  return [...bySeq.values()].sort((a, b) => a.seq - b.seq).slice(0, limit);
}

/**
 * False when KV surely holds no event of the stream from `from` on, so that no scan is needed: the head one writer
 * knows exactly is below it, or the whole stream is asked and it has no head key (its first commit writes the key
 * with its events). A burst of pumps new to Sluice then costs a key among ten in a batched read each, not a scan.
 */
async function mayHoldFrom(committer: Committer, stream: string, from: number, reads?: ReadBatcher): Promise<boolean> {
  const exact = committer.exactHead(stream);
  if (exact !== undefined) return exact >= from;
  if (from > 1 || !reads) return true;
  return (await reads.get(keys.head(stream))).versionstamp !== null;
}
