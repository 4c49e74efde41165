import { trueHead } from "../../store/heads.ts";
import type { Sluice } from "../../sluice.ts";

/** Every stream's head as stored in KV, once the tasks acked from the inbox have reached their streams. */
export async function streamHeads(sluice: Sluice): Promise<Map<string, number>> {
  await sluice.committer.flush();
  const heads = new Map<string, number>();
  for await (const e of sluice.kv.list<number>({ prefix: ["head"] })) {
    heads.set(e.key[1] as string, await trueHead(sluice.kv, e.key[1] as string));
  }
  return heads;
}
