import { keys } from "./keys.ts";

/**
 * Claims the single-writer epoch: from now on only this process's commits pass the epoch check.
 * A process that claims it later makes our next commit fail with `LeaseLostError`.
 */
export async function claimWriterEpoch(kv: Deno.Kv, instance: string): Promise<string> {
  const res = await kv.set(keys.writer(), { instance, claimedAt: Date.now() });
  return res.versionstamp;
}
