import { keys } from "./keys.ts";

/**
 * The layout of keys and values this Sluice writes. Bump it with any change an older Sluice would
 * misread (as versions before the inbox's packs misread them after a crash: acknowledged messages
 * lost, task ids given twice), so that such an older version refuses the KV instead.
 */
export const KV_FORMAT = 1;

/** Refuses a KV a newer layout wrote; otherwise marks it with this one (before anything else is written). */
export async function checkKvFormat(kv: Deno.Kv): Promise<void> {
  const entry = await kv.get<number>(keys.kvFormat());
  const stored = entry.value ?? 0;
  if (stored > KV_FORMAT) {
    throw new Error(
      `This KV was written by a newer Sluice (KV format ${stored}; this version reads up to ${KV_FORMAT}): ` +
        `start that newer version again, or restore a backup this version wrote`,
    );
  }
  if (stored < KV_FORMAT) await kv.atomic().check(entry).set(keys.kvFormat(), KV_FORMAT).commit();
}
