/**
 * Deno KV's limits per atomic commit and read, with a margin for what our estimates miss
 * (KV measures serialized sizes, we estimate from JSON).
 */
export const KV_LIMITS = {
  /** ≤ 1,000 mutations a commit. */
  mutations: 990,
  /** ≤ 100 checks a commit. */
  checks: 100,
  /** ≤ 800 KiB of mutations a commit. */
  commitBytes: 700 * 1024,
  /** ≤ 80 KiB of keys a commit. */
  commitKeyBytes: 72 * 1024,
  /** ≤ 64 KiB a value. */
  valueBytes: 64 * 1024,
  /** ≤ 1,000 entries a read. */
  readEntries: 1000,
  /** ≤ 10 keys a `getMany`. */
  getMany: 10,
} as const;

/** `items` in runs of at most `size` (by default what one `getMany` reads), in order. */
export function chunked<T>(items: readonly T[], size: number = KV_LIMITS.getMany): T[][] {
  const chunks: T[][] = [];
  for (let i = 0; i < items.length; i += size) chunks.push(items.slice(i, i + size));
  return chunks;
}

/** Deletes `keyList`, a commit per 500 keys (well within a commit's mutations and key bytes). */
export async function deleteKeys(kv: Deno.Kv, keyList: readonly Deno.KvKey[]): Promise<void> {
  for (const chunk of chunked(keyList, 500)) {
    const op = kv.atomic();
    for (const key of chunk) op.delete(key);
    await op.commit();
  }
}
