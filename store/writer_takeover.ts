import { headFrom } from "./heads.ts";
import { recoverInbox } from "./inbox.ts";
import { keys } from "./keys.ts";

/** The writer key's `instance` once several writers have taken the KV over. */
export const SHARED = "several writers";
/** The writer key's `instance` while they take it over (another one starting meanwhile does it too). */
const TAKING_OVER = "several writers, taking over";
/** Head keys read at once while they are checked. */
const HEADS_AT_ONCE = 64;

/** What a takeover did. */
export interface Takeover {
  /** Events acked in the one writer's inbox and moved to their streams. */
  readonly moved: number;
  /** Head keys that lagged their streams and were set to the truth. */
  readonly headsSet: number;
  readonly streams: number;
}

/**
 * Several writers (deploy mode) about to use a KV that one writer (local mode) used last: takes it
 * over before any of them appends. One writer claims the writer key, acks events in its inbox and
 * writes head keys lazily; several writers check a stream's head key in each append and trust it.
 * So this fences the one writer out (it checks the writer key in every commit: should it still run,
 * its next commit fails), moves what its inbox holds to the streams, then sets each head key that
 * lags its stream's last event (or, for tasks, which expire, the cursor that ran past it), and marks
 * the KV as shared: later starts do nothing. Instances starting together each do it all; moving an
 * event twice writes the same value, and a head key is set only if no append moved it meanwhile.
 * Returns null when there was nothing to take over.
 */
export async function takeOverFromOneWriter(
  kv: Deno.Kv,
  /** How long a stream's events are kept when no append says (undefined: for good). */
  retention: (stream: string) => number | undefined,
  log?: (line: string) => void,
): Promise<Takeover | null> {
  const writer = await kv.get<{ instance?: string }>(keys.writer());
  if (writer.value === null || writer.value.instance === SHARED) return null;
  const started = Date.now();
  const claim = await kv.set(keys.writer(), { instance: TAKING_OVER, claimedAt: started });
  const { moved } = await recoverInbox(kv, null);
  let streams = 0, headsSet = 0, batch: Deno.KvEntry<number>[] = [];
  const settle = async () => {
    const set = await Promise.all(batch.map((e) => setTrueHead(kv, e, retention)));
    headsSet += set.filter(Boolean).length;
    streams += batch.length;
    batch = [];
  };
  let toldAt = started;
  for await (const e of kv.list<number>({ prefix: keys.heads() }, { batchSize: 500 })) {
    batch.push(e);
    if (batch.length < HEADS_AT_ONCE) continue;
    await settle();
    if (Date.now() - toldAt >= 10_000) {
      toldAt = Date.now();
      log?.(`Taking over the KV one writer left: ${streams} streams' head keys checked, ${headsSet} set so far`);
    }
  }
  await settle();
  // Done unless another instance started a takeover after this one (it marks the KV when it is done).
  await kv.atomic()
    .check({ key: keys.writer(), versionstamp: claim.versionstamp })
    .set(keys.writer(), { instance: SHARED, claimedAt: Date.now() })
    .commit();
  log?.(
    `Took over the KV one writer (local mode) left: ${moved} acknowledged events moved from its inbox, ` +
      `${headsSet} of ${streams} head keys set to their streams' last events, in ${Date.now() - started} ms`,
  );
  return { moved, headsSet, streams };
}

/** Sets a head key that lags its stream; says whether it did (no, when an append moved it meanwhile). */
async function setTrueHead(
  kv: Deno.Kv,
  head: Deno.KvEntry<number>,
  retention: (stream: string) => number | undefined,
): Promise<boolean> {
  const stream = head.key[1] as string;
  let seq = await headFrom(kv, stream, head.value);
  // A stream whose events expire (tasks): those past a lagging head key may be gone, but its cursor
  // ran past them, and a seq is never given out twice.
  if (retention(stream) !== undefined) seq = Math.max(seq, (await kv.get<number>(keys.cursor(stream))).value ?? 0);
  if (seq <= head.value) return false;
  const res = await kv.atomic().check(head).set(head.key, seq).commit();
  return res.ok;
}
