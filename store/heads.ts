import { keys } from "./keys.ts";

/**
 * A stream's true head from a hint: one writer persists head keys lazily (at most once a second
 * per stream), so the events after the hinted seq are the truth. One reverse read of one entry.
 */
export async function headFrom(kv: Deno.Kv, stream: string, hinted: number): Promise<number> {
  const iter = kv.list({ start: keys.event(stream, hinted + 1), end: keys.event(stream, Number.MAX_SAFE_INTEGER) }, {
    reverse: true,
    limit: 1,
  });
  for await (const e of iter) return Math.max(hinted, e.key[2] as number);
  return hinted;
}

/** The seq of a stream's last event (0 when empty). */
export async function trueHead(kv: Deno.Kv, stream: string): Promise<number> {
  return await headFrom(kv, stream, (await kv.get<number>(keys.head(stream))).value ?? 0);
}
