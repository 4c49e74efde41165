import { keys } from "./keys.ts";
import { chunked, KV_LIMITS } from "./kv_limits.ts";

/**
 * A key whose new value must be durable with its commit but may reach the key itself later (one
 * writer): a task stream's cursor. A commit writes all of its lazy keys as one pack; the writer
 * answers reads from memory meanwhile, and writes the keys themselves (and deletes the packs) about
 * once a second. A lane's batch moved its cursor with a key of its own before: one mutation per
 * batch, nearly one per task under load where each device has one task at a time.
 */
export interface LazySet {
  readonly key: Deno.KvKey;
  readonly value: number;
}

/** One pack of lazy keys, in the order they were set. */
export interface LazyPack {
  readonly sets: readonly (readonly [Deno.KvKey, number])[];
}

/** A pack's size limit (estimated), a quarter of KV's value limit as for the inbox's packs. */
export const LAZY_PACK_BYTES = KV_LIMITS.valueBytes / 4;

/** Splits a commit's lazy keys into packs under `LAZY_PACK_BYTES`. */
export function lazyPacks(sets: readonly LazySet[]): LazyPack[] {
  const packs: LazyPack[] = [];
  let current: (readonly [Deno.KvKey, number])[] = [];
  let bytes = 0;
  for (const s of sets) {
    const b = lazyBytes(s);
    if (current.length > 0 && bytes + b > LAZY_PACK_BYTES) packs.push({ sets: current }), current = [], bytes = 0;
    current.push([s.key, s.value]);
    bytes += b;
  }
  if (current.length > 0) packs.push({ sets: current });
  return packs;
}

/** A lazy key's estimated size in a pack. */
export function lazyBytes(s: LazySet): number {
  let n = 16;
  for (const part of s.key) n += typeof part === "string" ? 2 * part.length + 4 : 12;
  return n;
}

const WRITE_BATCH = 400;

/**
 * Writes the keys of the packs a stopped process left (the last value of each key wins, packs in
 * order), then deletes the packs. Runs at start-up, after the writer epoch is claimed and before
 * anything reads those keys. Returns how many keys it wrote and the number of the next pack.
 */
export async function recoverLazyKeys(kv: Deno.Kv, epoch: string): Promise<{ written: number; nextPack: number }> {
  const latest = new Map<string, LazySet>();
  const stored: Deno.KvKey[] = [];
  let lastPack = 0;
  for await (const e of kv.list<LazyPack>({ prefix: keys.lazyPacks() }, { batchSize: 100 })) {
    for (const [key, value] of e.value.sets) latest.set(JSON.stringify(key), { key, value });
    lastPack = Math.max(lastPack, e.key[1] as number);
    stored.push(e.key);
  }
  const commit = async (op: Deno.AtomicOperation) => {
    if (!(await op.check({ key: keys.writer(), versionstamp: epoch }).commit()).ok) {
      throw new Error("Another process took over this KV store while its lazy keys were recovered");
    }
  };
  for (const batch of chunked([...latest.values()], WRITE_BATCH)) {
    const op = kv.atomic();
    for (const s of batch) op.set(s.key, s.value);
    await commit(op);
  }
  for (const batch of chunked(stored, WRITE_BATCH)) {
    const op = kv.atomic();
    for (const key of batch) op.delete(key);
    await commit(op);
  }
  return { written: latest.size, nextPack: lastPack + 1 };
}
