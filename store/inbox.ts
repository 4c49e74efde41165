import { keys } from "./keys.ts";

/**
 * The inbox: one writer acks an append to a task stream once it is in the inbox (sequential
 * keys, so a commit touches a few KV pages instead of one per stream), and moves it to
 * `["ev", stream, seq]` a few milliseconds later in a bigger batch (see `Committer`).
 *
 * The inbox is a ring of `INBOX_SLOTS` keys: entry `n` goes to slot `n % INBOX_SLOTS`, so a move
 * deletes nothing (a later entry overwrites the slot). The moves write a marker: every entry up to
 * it has reached its stream. An entry never overwrites a slot whose entry has not moved yet (the
 * committer writes such an event straight to its stream instead).
 *
 * Under load the committer holds moves back and then moves stream by stream: a device's events of
 * the last second land side by side, so a move commit touches a few KV pages per device instead of
 * one per event (the KV's cost is per page touched).
 */
export interface InboxEntry {
  readonly n: number;
  readonly stream: string;
  readonly seq: number;
  readonly type: string;
  readonly data: unknown;
  readonly at: number;
  readonly expireIn?: number;
  /** Keys written with the event's move (a sender's message-id key). */
  readonly sets?: readonly DeferredSet[];
}

/** A key written with its event's move. */
export interface DeferredSet {
  readonly key: Deno.KvKey;
  readonly value: unknown;
  readonly expireIn?: number;
}

/** The stored form of an entry (nothing but the `InboxEntry` fields). */
export function inboxEntry(e: InboxEntry): InboxEntry {
  return {
    n: e.n,
    stream: e.stream,
    seq: e.seq,
    type: e.type,
    data: e.data,
    at: e.at,
    ...(e.expireIn === undefined ? {} : { expireIn: e.expireIn }),
    ...(e.sets?.length ? { sets: e.sets } : {}),
  };
}

/**
 * Slots of the ring: room for the events acked while moves are held back to group them (about a
 * second of ingest), with headroom for a burst; beyond it events go straight to their streams.
 */
export const INBOX_SLOTS = 65_536;

/** Entries moved per commit at start-up (each may carry a key of its own). */
const RECOVERY_BATCH = 400;

/** The key of entry `n` in a ring of `slots`. */
export function inboxKey(n: number, slots = INBOX_SLOTS): Deno.KvKey {
  return keys.inbox(n % slots);
}

/** Adds to `op` the moves of `entries` to their streams (and their keys); returns the mutations. */
export function moveOut(op: Deno.AtomicOperation, entries: readonly InboxEntry[]): number {
  let mutations = 0;
  for (const e of entries) {
    op.set(
      keys.event(e.stream, e.seq),
      { type: e.type, data: e.data, at: e.at },
      e.expireIn === undefined ? undefined : { expireIn: e.expireIn },
    );
    for (const d of e.sets ?? []) {
      op.set(d.key, d.value, d.expireIn === undefined ? undefined : { expireIn: d.expireIn });
    }
    mutations += 1 + (e.sets?.length ?? 0);
  }
  return mutations;
}

/**
 * Moves whatever a stopped process left in the inbox to its streams. Runs at start-up, after the
 * writer epoch is claimed and before any head is read. It reads the whole ring (0.4 s for 65,536
 * entries here), so a ring left by a version with fewer slots is recovered too. Entries after the
 * marker may have moved already (moves go stream by stream, the marker follows the oldest):
 * moving one again writes the same values. Returns how many events it moved and the number the
 * next entry gets.
 */
export async function recoverInbox(kv: Deno.Kv, epoch: string): Promise<{ moved: number; next: number }> {
  const marker = (await kv.get<number>(keys.inboxMoved())).value ?? 0;
  let last = marker;
  const left: InboxEntry[] = [];
  for await (const e of kv.list<InboxEntry>({ prefix: keys.inboxAll() }, { batchSize: 1000 })) {
    last = Math.max(last, e.value.n);
    if (e.value.n > marker) left.push(e.value);
  }
  left.sort((a, b) => a.n - b.n);
  for (let i = 0; i < left.length; i += RECOVERY_BATCH) {
    const batch = left.slice(i, i + RECOVERY_BATCH);
    const op = kv.atomic().check({ key: keys.writer(), versionstamp: epoch });
    moveOut(op, batch);
    op.set(keys.inboxMoved(), batch.at(-1)!.n);
    if (!(await op.commit()).ok) {
      throw new Error("Another process took over this KV store while its inbox was recovered");
    }
  }
  return { moved: left.length, next: last + 1 };
}
