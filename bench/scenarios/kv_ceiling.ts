import type { ScenarioResult } from "../result.ts";
import { eventExpiry } from "../../store/event_expiry.ts";
import { keys } from "../../store/keys.ts";
import { PACK_BYTES } from "../../store/inbox.ts";
import { INBOX_MOVE_GROUP } from "../../store/committer.ts";
import { MOVE_MUTATIONS } from "../../store/inbox_ledger.ts";

/** A queued task's event, as Sluice stores it. */
const TASK = {
  type: "TaskQueued",
  data: {
    method: "blog/queues/processor",
    params: { data: "21.5,1.25,45.5017:-73.5673,2026-11-25T10:00:00.000Z" },
    device: "bench-1",
    receivedAt: Date.now(),
    protocol: "mqtt",
  },
  at: Date.now(),
};

/** Events are set as Sluice sets them in a local KV (with their expiry). */
const AS_EVENT = eventExpiry(undefined);

/** A KV file of its own on the benchmark's disk. */
async function tempKv(): Promise<{ kv: Deno.Kv; close(): Promise<void> }> {
  const dir = await Deno.makeTempDir({ prefix: "sluice-bench-kv-" });
  const kv = await Deno.openKv(`${dir}/bench.kv`);
  return { kv, close: async () => (kv.close(), await Deno.remove(dir, { recursive: true })) };
}

/**
 * Batched atomic sets/s on the benchmark's disk: 500 event-sized values a commit, for `seconds`,
 * written as Sluice writes events.
 */
export async function kvCeiling(seconds: number): Promise<ScenarioResult & { setsPerSec: number }> {
  const { kv, close } = await tempKv();
  let sets = 0, i = 0;
  const started = performance.now();
  while (performance.now() - started < seconds * 1000) {
    const op = kv.atomic();
    for (let k = 0; k < 500; k++, i++) op.set(["ev", `t/blog_queuing/bench-${i % 64}`, i], TASK, AS_EVENT);
    await op.commit();
    sets += 500;
  }
  const setsPerSec = Math.round(sets / ((performance.now() - started) / 1000));
  await close();
  return { scenario: "KV group-commit ceiling (500 sets/commit)", rate: setsPerSec, unit: "sets/s", setsPerSec };
}

/**
 * The KV doing exactly Sluice's writes for one message, with nothing else running: the inbox entry
 * (commits of 300, in packs of PACK_BYTES), its move with the message-id key (held back until `INBOX_MOVE_GROUP` entries wait,
 * then stream by stream in commits of 250 mutations, as the committer does under load), and,
 * `withProcessing`, the reading event and the lane cursor (one commit per inbox commit), over
 * `devices` devices. Messages/s.
 */
export async function kvPatternCeiling(
  seconds: number,
  devices: number,
  withProcessing: boolean,
): Promise<ScenarioResult> {
  const { kv, close } = await tempKv();
  const reading = {
    type: "ReadingRecorded",
    data: {
      reading: {
        temperature: 21.5,
        pressure: 1.25,
        lat: 45.5,
        lon: -73.5,
        time: "2026-11-25T10:00:00Z",
        outsideTemperature: 4.5,
      },
      taskId: "t.abc.def.12",
    },
    at: Date.now(),
  };
  type Acked = { n: number; device: string; stream: string; seq: number };
  const seqs = new Array<number>(devices).fill(0);
  let messages = 0, n = 0, pack = 0, waiting: Acked[] = [];
  const packs: number[] = [];
  const move = async (group: Acked[]) => {
    group.sort((a, b) => a.stream < b.stream ? -1 : a.stream > b.stream ? 1 : a.seq - b.seq);
    // A pack is deleted with the move of its last entry: the deletes spread over the move's commits.
    const deletes = Math.ceil(packs.length / Math.ceil(group.length / (MOVE_MUTATIONS / 2)));
    for (let i = 0; i < group.length; i += MOVE_MUTATIONS / 2) {
      const op = kv.atomic();
      for (const p of packs.splice(0, deletes)) op.delete(keys.inbox(p));
      for (const b of group.slice(i, i + MOVE_MUTATIONS / 2)) {
        op.set(keys.event(b.stream, b.seq), TASK, AS_EVENT);
        op.set(keys.dedup(b.device, `${b.device}-${b.n}`), { stream: b.stream, seq: b.seq }, { expireIn: 86_400_000 });
      }
      await op.set(keys.inboxMoved(), n).commit();
    }
  };
  const started = performance.now();
  while (performance.now() - started < seconds * 1000) {
    const batch: Acked[] = [];
    const ingest = kv.atomic();
    let entries: unknown[] = [], bytes = 0;
    const packUp = () => (ingest.set(keys.inbox(++pack), { entries }), packs.push(pack), entries = [], bytes = 0);
    for (let k = 0; k < 300; k++, n++) {
      const d = n % devices, device = `bench-${d}`, stream = `t/blog_queuing/${device}`, seq = ++seqs[d]!;
      const entry = { n, stream, seq, ...TASK };
      const b = JSON.stringify(entry).length + 150; // and the message-id key it carries
      if (bytes + b > PACK_BYTES) packUp();
      entries.push(entry);
      bytes += b;
      batch.push({ n, device, stream, seq });
    }
    packUp();
    await ingest.commit();
    waiting.push(...batch);
    if (waiting.length >= INBOX_MOVE_GROUP) await move(waiting), waiting = [];
    if (withProcessing) {
      const processing = kv.atomic();
      const cursors = new Map<string, number>();
      for (const b of batch) {
        processing.set(keys.event(`p/${b.device}`, b.seq), reading, AS_EVENT);
        cursors.set(b.stream, b.seq);
      }
      for (const [stream, seq] of cursors) processing.set(keys.cursor(stream), seq);
      await processing.commit();
    }
    messages += batch.length;
  }
  await move(waiting); // the moves still owed count in the time
  const rate = Math.round(messages / ((performance.now() - started) / 1000));
  await close();
  return {
    scenario: `KV alone, Sluice's writes per message, ${devices} devices (${
      withProcessing ? "ingest + processing" : "ingest only"
    })`,
    rate,
    unit: "msgs/s",
  };
}
