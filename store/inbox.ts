import { keys } from "./keys.ts";

/**
 * The inbox: one writer acks an append to a task stream once it is in `["in", n]` (sequential
 * keys, so a commit touches a few KV pages instead of one per stream), and moves it to
 * `["ev", stream, seq]` a few milliseconds later in a bigger batch (see `Committer`).
 */
export interface InboxEntry {
  readonly stream: string;
  readonly seq: number;
  readonly type: string;
  readonly data: unknown;
  readonly at: number;
  readonly expireIn?: number;
}

/** Most entries moved in one commit (a set and a delete each). */
export const INBOX_MOVE_MAX = 400;

/** Adds to `op` the moves of `entries` from the inbox to their streams. */
export function moveOut(op: Deno.AtomicOperation, entries: readonly (InboxEntry & { readonly n: number })[]): void {
  for (const e of entries) {
    op.set(
      keys.event(e.stream, e.seq),
      { type: e.type, data: e.data, at: e.at },
      e.expireIn === undefined ? undefined : { expireIn: e.expireIn },
    );
    op.delete(keys.inbox(e.n));
  }
}

/**
 * Moves whatever a stopped process left in the inbox to its streams. Runs at start-up, after the
 * writer epoch is claimed and before any head is read. Returns how many events it moved.
 */
export async function recoverInbox(kv: Deno.Kv, epoch: string): Promise<number> {
  let moved = 0;
  for (;;) {
    const batch: (InboxEntry & { n: number })[] = [];
    for await (const e of kv.list<InboxEntry>({ prefix: keys.inboxAll() }, { limit: INBOX_MOVE_MAX })) {
      batch.push({ ...e.value, n: e.key[1] as number });
    }
    if (batch.length === 0) return moved;
    const op = kv.atomic().check({ key: keys.writer(), versionstamp: epoch });
    moveOut(op, batch);
    const res = await op.commit();
    if (!res.ok) throw new Error("Another process took over this KV store while its inbox was recovered");
    moved += batch.length;
  }
}
