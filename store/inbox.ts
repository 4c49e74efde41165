import { eventExpiry } from "./event_expiry.ts";
import { keys } from "./keys.ts";
import { KV_LIMITS } from "./kv_limits.ts";
import { keySize, valueSize } from "../core/kv_size.ts";

/**
 * The inbox: one writer acks an append to a task stream once it is in the inbox, and moves it to
 * `["ev", stream, seq]` a few milliseconds later in a bigger batch (see `Committer`).
 *
 * The events a commit acks go into the inbox together, as a few packs (one KV value each, keys
 * `["inbox", p]` in commit order) instead of one key per event: an ack commit writes a handful
 * of mutations whatever its number of events. Each event has a number `n`; a pack is deleted in
 * the commit that moves the last of its events. The moves also write a marker: every event up to
 * it has reached its stream.
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

/** The stored form of a pack: the events of one ack commit (or a share of them). */
export interface InboxPack {
  readonly entries: readonly InboxEntry[];
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
 * Events that may wait in the inbox: about a second of ingest while moves are held back to group
 * them, with headroom for a burst; beyond it events go straight to their streams.
 */
export const INBOX_LIMIT = 65_536;

/**
 * A pack's estimated size (JSON, with its keys): a quarter of KV's value limit, since V8's
 * serialization may take two bytes for a character JSON counts once. A bigger event goes straight
 * to its stream (alone in a pack it could still exceed the value limit).
 */
export const PACK_BYTES = KV_LIMITS.valueBytes / 4;

/** Entries moved per commit at start-up, at most (each may carry a key of its own; see `recoveryBatches`). */
const RECOVERY_BATCH = 400;
/** Inbox keys deleted per commit at start-up, once their entries moved. */
const DELETE_BATCH = 500;

/** Adds to `op` the moves of `entries` to their streams (and their keys); returns the mutations. */
export function moveOut(op: Deno.AtomicOperation, entries: readonly InboxEntry[]): number {
  let mutations = 0;
  for (const e of entries) {
    op.set(
      keys.event(e.stream, e.seq),
      { type: e.type, data: e.data, at: e.at },
      eventExpiry(e.expireIn), // the inbox is one local writer's
    );
    for (const d of e.sets ?? []) {
      // A key KV cannot hold would sink the move for good (Sluice could neither stop nor start): an
      // unchecked message id of an older version wrote such ones. Only that id's dedup is lost.
      if (!keyFits(d.key)) continue;
      op.set(d.key, d.value, d.expireIn === undefined ? undefined : { expireIn: d.expireIn });
    }
    mutations += 1 + (e.sets?.length ?? 0);
  }
  return mutations;
}

/** KV's largest key, in bytes as it encodes them. */
const MAX_KEY_BYTES = 2048;
const utf8 = new TextEncoder();

/** Whether KV takes `key` (each part's encoding is its bytes and a tag and terminator). */
function keyFits(key: Deno.KvKey): boolean {
  let bound = 0;
  for (const part of key) bound += typeof part === "string" ? part.length * 3 + 2 : 10;
  if (bound <= MAX_KEY_BYTES) return true; // the usual case: no need to encode
  let bytes = 0;
  for (const part of key) {
    bytes += typeof part === "string" ? utf8.encode(part).length + part.split("\0").length + 1 : 10; // a NUL takes two
  }
  return bytes <= MAX_KEY_BYTES;
}

/**
 * Moves whatever a stopped process left in the inbox to its streams, then empties the inbox. Runs
 * at start-up, after the writer epoch is claimed and before any head is read. Entries after the
 * marker may have moved already (moves go stream by stream, the marker follows the oldest): moving
 * one again writes the same values. It also reads the ring of single entries (`["in", slot]`) that
 * versions before the packs wrote. Returns how many events it moved, the number the next entry
 * gets and the number of the next pack.
 *
 * `epoch` null: several writers take over a KV one writer used last (`writer_takeover.ts`; they
 * fenced it out first). Each moves what it finds, unfenced: a second move writes the same values,
 * and none appends to a stream before its own takeover is done.
 */
export async function recoverInbox(
  kv: Deno.Kv,
  epoch: string | null,
): Promise<{ moved: number; next: number; nextPack: number }> {
  const marker = (await kv.get<number>(keys.inboxMoved())).value ?? 0;
  let last = marker, lastPack = 0;
  const left: InboxEntry[] = [];
  const stored: Deno.KvKey[] = [];
  const note = (e: InboxEntry) => {
    last = Math.max(last, e.n);
    if (e.n > marker) left.push(e);
  };
  for await (const e of kv.list<InboxEntry>({ prefix: keys.legacyInboxAll() }, { batchSize: 1000 })) {
    note(e.value);
    stored.push(e.key);
  }
  for await (const e of kv.list<InboxPack>({ prefix: keys.inboxAll() }, { batchSize: 100 })) {
    for (const entry of e.value.entries) note(entry);
    lastPack = Math.max(lastPack, e.key[1] as number);
    stored.push(e.key);
  }
  left.sort((a, b) => a.n - b.n);
  const commit = async (op: Deno.AtomicOperation) => {
    if (epoch !== null) op.check({ key: keys.writer(), versionstamp: epoch });
    if (!(await op.commit()).ok) {
      throw new Error("Another process took over this KV store while its inbox was recovered");
    }
  };
  for (const batch of recoveryBatches(left)) {
    const op = kv.atomic();
    moveOut(op, batch);
    await commit(op.set(keys.inboxMoved(), batch.at(-1)!.n));
  }
  for (let i = 0; i < stored.length; i += DELETE_BATCH) {
    const op = kv.atomic();
    for (const key of stored.slice(i, i + DELETE_BATCH)) op.delete(key);
    await commit(op);
  }
  return { moved: left.length, next: last + 1, nextPack: lastPack + 1 };
}

/**
 * Splits the entries to move into commits within KV's limits: 400 entries, or fewer when they are big
 * (an entry may be 16 KiB as JSON counts it and several times that as KV stores it; a commit takes
 * 800 KiB).
 */
function recoveryBatches(entries: readonly InboxEntry[]): InboxEntry[][] {
  const batches: InboxEntry[][] = [];
  let batch: InboxEntry[] = [], bytes = 0, keyBytes = 0, mutations = 1;
  for (const e of entries) {
    const key = keySize(keys.event(e.stream, e.seq));
    let b = key + valueSize({ type: e.type, data: e.data, at: e.at }), k = key;
    for (const d of e.sets ?? []) {
      const size = keySize(d.key);
      b += size + valueSize(d.value), k += size;
    }
    const m = 1 + (e.sets?.length ?? 0);
    if (
      batch.length > 0 &&
      (batch.length >= RECOVERY_BATCH || bytes + b > KV_LIMITS.commitBytes ||
        keyBytes + k > KV_LIMITS.commitKeyBytes || mutations + m > KV_LIMITS.mutations)
    ) {
      batches.push(batch);
      batch = [], bytes = 0, keyBytes = 0, mutations = 1;
    }
    batch.push(e);
    bytes += b, keyBytes += k, mutations += m;
  }
  if (batch.length > 0) batches.push(batch);
  return batches;
}
