import assert from "node:assert/strict";
import { handClock, systemClock } from "../core/clock.ts";
import { ConcurrencyError, LeaseLostError, PayloadTooLargeError } from "../core/errors.ts";
import { type CommitStats, Committer, type CommitterOptions, type WriteMode } from "./committer.ts";
import { eventStoreContract } from "./event_store_contract.ts";
import { KvEventStore, readLog } from "./kv_event_store.ts";
import { MemoryEventStore } from "./memory_event_store.ts";
import { claimWriterEpoch } from "./writer_epoch.ts";
import { type InboxPack, PACK_BYTES, recoverInbox } from "./inbox.ts";
import { keys } from "./keys.ts";
import { ReadBatcher } from "./read_batcher.ts";
import { SHARED, takeOverFromOneWriter } from "./writer_takeover.ts";
import { EVENT_KEEP_MS } from "./event_expiry.ts";

/** A small inbox, so that tests fill it quickly. */
const INBOX_LIMIT = 1024;

async function kvStore(mode: WriteMode, onCommit?: (s: CommitStats) => void, inbox?: (stream: string) => boolean) {
  const dir = await Deno.makeTempDir();
  const kv = await Deno.openKv(`${dir}/test.kv`);
  const epoch = await claimWriterEpoch(kv, "test");
  const committer = new Committer({ kv, mode, clock: systemClock, epoch, onCommit, inbox, inboxLimit: INBOX_LIMIT });
  return {
    kv,
    committer,
    store: new KvEventStore(kv, committer),
    close: async () => {
      await committer.close();
      kv.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

eventStoreContract("memory store", () => Promise.resolve({ store: new MemoryEventStore(), close: async () => {} }));
eventStoreContract("KV store, single writer", () => kvStore("single"));
eventStoreContract("KV store, several writers", () => kvStore("multi"));
eventStoreContract("KV store, single writer acking from the inbox", () => kvStore("single", undefined, () => true));

Deno.test("events acked from the inbox are readable at once and reach their streams' keys in batches", async () => {
  const stats: CommitStats[] = [];
  const f = await kvStore("single", (s) => stats.push(s), (s) => s.startsWith("t/"));
  try {
    const acks = await Promise.all(
      Array.from(
        { length: 300 },
        (_, i) => f.committer.write({ appends: [{ stream: `t/${i % 3}`, event: { type: "N", data: i } }] }),
      ),
    );
    const last = acks.at(-1)!.positions[0]!;
    assert.equal(f.committer.unmoved(last.stream, last.seq)?.data, 299);
    for (const i of [0, 1, 150, 298]) {
      const { stream, seq } = acks[i]!.positions[0]!;
      assert.equal(f.committer.unmoved(stream, seq)?.data, i, `event ${i} is read from the inbox`);
    }
    assert.equal(f.committer.unmoved(last.stream, last.seq + 1), undefined, "no event past the head");
    assert.equal(f.committer.unmoved("t/9", 1), undefined, "no event of a stream never written");
    assert.equal((await f.kv.get(["ev", last.stream, last.seq])).versionstamp, null, "not yet moved");
    await f.committer.flush();
    assert.equal(f.committer.unmoved(last.stream, last.seq), undefined);
    assert.deepEqual((await f.store.read("t/2")).map((e) => e.data), Array.from({ length: 100 }, (_, i) => 3 * i + 2));
    assert.equal((await f.kv.get(["in-moved"])).value, 300, "the marker says every entry moved");
    assert.deepEqual(await Array.fromAsync(f.kv.list({ prefix: keys.inboxAll() })), [], "moved packs are deleted");
  } finally {
    await f.close();
  }
});

Deno.test("an ack commit stores its events in the inbox as a few packs, not a key each", async () => {
  const stats: CommitStats[] = [];
  const f = await kvStore("single", (s) => stats.push(s), () => true);
  try {
    const big = "x".repeat(PACK_BYTES);
    await Promise.all([
      ...Array.from(
        { length: 200 },
        (_, i) => f.store.append(`t/${i % 7}`, [{ type: "N", data: { i, pad: "p".repeat(300) } }]),
      ),
      f.store.append("t/big", [{ type: "N", data: big }]),
    ]);
    const packs = await Array.fromAsync(f.kv.list<InboxPack>({ prefix: keys.inboxAll() }));
    const waiting = packs.flatMap((p) => p.value.entries);
    // Under load moves wait a second to group them: the events are still in the inbox.
    assert.ok(
      waiting.length >= 100 && packs.length < waiting.length / 10,
      `${packs.length} packs hold ${waiting.length} events`,
    );
    assert.ok(packs.every((p) => JSON.stringify(p.value).length <= 2 * PACK_BYTES), "each pack within its size");
    assert.ok(!waiting.some((e) => e.stream === "t/big"), "an event too big for a pack is not in the inbox");
    assert.equal((await f.kv.get<{ data: string }>(keys.event("t/big", 1))).value?.data, big, "it went to its stream");
    assert.ok(stats.some((s) => s.requests >= 50), "acks were grouped");
    assert.ok(
      stats.every((s) => s.requests < 50 || s.mutations < s.requests / 4),
      "a commit's mutations do not grow with its acks",
    );
    await f.committer.flush();
    assert.deepEqual(
      (await f.store.read("t/3")).map((e) => (e.data as { i: number }).i),
      [3, 10, 17, 24, 31, 38].concat(
        Array.from({ length: 23 }, (_, k) => 45 + 7 * k),
      ),
    );
  } finally {
    await f.close();
  }
});

Deno.test("the inbox never holds more than its limit: a burst beyond it goes straight to its streams", async () => {
  const f = await kvStore("single", undefined, () => true);
  try {
    const n = INBOX_LIMIT + 1500;
    await Promise.all(
      Array.from({ length: n }, (_, i) => f.store.append(`t/${i % 30}`, [{ type: "N", data: i }])),
    );
    for (const k of [0, 29]) {
      const events = await f.store.read(`t/${k}`, 1, 1000);
      assert.equal(events.length, Math.floor((n - 1 - k) / 30) + 1);
      assert.ok(events.every((e, i) => e.seq === i + 1 && e.data === k + 30 * i), "every event once, in order");
    }
  } finally {
    await f.close();
  }
});

Deno.test("events acked from the inbox survive a crash: the next writer moves them before reading heads", () =>
  onKvFile(async (kv) => {
    const first = await inboxWriter(kv, "a");
    await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        first.write({
          appends: [{ stream: `t/${i % 5}`, event: { type: "N", data: i } }],
          sets: [{ key: ["dedup", "d", `m${i}`], derive: (p) => p[0], withMove: true }],
        })),
    );
    assert.deepEqual(first.withMove(["dedup", "d", "m7"]), { stream: "t/2", seq: 2 });
    // The process dies before the move: another one claims the KV.
    const second = await inboxWriter(kv, "b");
    assert.equal(await second.recover(), 50);
    assert.deepEqual(
      (await kv.get(["dedup", "d", "m7"])).value,
      { stream: "t/2", seq: 2 },
      "keys moved with their events",
    );
    const store = new KvEventStore(kv, second);
    assert.equal(await store.head("t/3"), 10);
    assert.deepEqual((await store.read("t/3")).map((e) => e.data), [3, 8, 13, 18, 23, 28, 33, 38, 43, 48]);
    await store.append("t/3", [{ type: "N", data: 50 }]);
    assert.deepEqual((await store.read("t/3", 11)).map((e) => [e.seq, e.data]), [[11, 50]]);
    // Moved packs are gone: only the events still waiting move again.
    await Promise.all(
      Array.from(
        { length: INBOX_LIMIT + 100 },
        (_, i) => second.write({ appends: [{ stream: "t/w", event: { type: "N", data: i } }] }),
      ),
    );
    await second.flush();
    await Promise.all(
      Array.from(
        { length: 40 },
        (_, i) => second.write({ appends: [{ stream: "t/w", event: { type: "N", data: INBOX_LIMIT + 100 + i } }] }),
      ),
    );
    const third = await inboxWriter(kv, "c");
    assert.equal(await third.recover(), 40);
    const all = await new KvEventStore(kv, third).read("t/w", 1, 100_000);
    assert.equal(all.length, INBOX_LIMIT + 140);
    assert.ok(all.every((e, i) => e.seq === i + 1 && e.data === i), "every event once, in order");
    await third.close();
    await second.close().catch(() => {});
    await first.close().catch(() => {});
  }));

Deno.test("big events of two-byte text move from the inbox within KV's commit limit (none stays behind)", async () => {
  const f = await kvStore("single", undefined, () => true);
  try {
    // 8,000 CJK characters: about 8 KB as JSON counts, 16 KB as V8 stores them; two a request share a pack.
    const text = "温".repeat(8000);
    await Promise.all(
      Array.from({ length: 100 }, (_, i) =>
        f.committer.write({
          appends: [0, 1].map((k) => ({ stream: `t/${i % 2}`, event: { type: "N", data: { i, k, text } } })),
        })),
    );
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([f.committer.flush(), new Promise((r) => timer = setTimeout(r, 5000))]);
    clearTimeout(timer);
    assert.equal(f.committer.inboxSize, 0, "every event moved");
    assert.equal((await Array.fromAsync(f.kv.list({ prefix: keys.inboxAll() }))).length, 0, "the inbox is empty");
    assert.equal((await f.store.read("t/1", 1, 1000)).length, 100);
  } finally {
    await f.close();
  }
});

for (
  const [what, filler] of [
    ["text", "x".repeat(4096)],
    // 6 KB as JSON, 13.5 KB as V8 stores them (9 bytes a number).
    ["fractional numbers", Array(1500).fill(0.5)],
  ] as const
) {
  Deno.test(`a crash with more acked bytes in the inbox than one KV commit takes is recovered in several commits (${what})`, () =>
    onKvFile(async (kv) => {
      const first = await inboxWriter(kv, "a");
      try {
        // 300 events of 4 KiB or more (over 1.2 MiB; a commit takes 800 KiB at most), three devices, each with an id.
        const text = filler;
        await Promise.all(
          Array.from({ length: 300 }, (_, i) =>
            first.write({
              appends: [{ stream: `t/${i % 3}`, event: { type: "N", data: { i, text } } }],
              sets: [{ key: ["dedup", "d", `m${i}`], derive: (p) => p[0], withMove: true }],
            })),
        );
        // The process dies before the move: another one claims the KV and starts.
        const second = await inboxWriter(kv, "b");
        assert.equal(await second.recover(), 300);
        const events = await new KvEventStore(kv, second).read("t/1", 1, 1000);
        assert.deepEqual(
          events.map((e) => (e.data as { i: number }).i),
          Array.from({ length: 100 }, (_, k) => 3 * k + 1),
        );
        assert.equal((await Array.fromAsync(kv.list({ prefix: keys.inboxAll() }))).length, 0, "the inbox is empty");
        await second.close();
      } finally {
        await first.close().catch(() => {});
      }
    }));
}

Deno.test("several writers take over a KV one writer left: its inbox moves, head keys catch up, it is fenced out", () =>
  onKvFile(async (kv) => {
    const retention = (stream: string) => stream.startsWith("t/") ? 3_600_000 : undefined;
    const first = await inboxWriter(kv, "local", { inbox: (stream) => stream.startsWith("t/"), retention });
    try {
      // Two appends within a second: the topic's head key is written lazily, so it lags its events.
      for (const data of [0, 1]) await first.write({ appends: [{ stream: "s/topic", event: { type: "N", data } }] });
      assert.ok(
        ((await kv.get<number>(keys.head("s/topic"))).value ?? 0) < 2,
        "the head key lags (the test's premise)",
      );
      // A task stream whose head key lags and whose events past it expired; its cursor ran to 3.
      await kv.atomic().set(keys.head("t/gone"), 1).set(keys.event("t/gone", 1), { type: "N", data: 0, at: 0 })
        .set(keys.cursor("t/gone"), 3).commit();
      // 40 tasks acked in the inbox; the local process stops before it moves them (more than it moves at once).
      await Promise.all(
        Array.from({ length: 40 }, (_, i) =>
          first.write({
            appends: [{ stream: `t/${i % 2}`, event: { type: "N", data: i } }],
            sets: [{ key: ["dedup", "d", `m${i}`], derive: (p) => p[0], withMove: true }],
          })),
      );
      const deployed = [0, 1].map(() => new Committer({ kv, mode: "multi", clock: systemClock, retention }));
      // Both start at once: each moves what it found (again: the same values) or finds it moved.
      const moved = await Promise.all(deployed.map((c) => c.recover()));
      assert.ok(moved.includes(40) && moved.every((n) => n === 0 || n === 40), `moved ${moved}`);
      // The one writer, were it still running, can no longer commit.
      await assert.rejects(first.write({ appends: [{ stream: "s/topic", event: { type: "N", data: "late" } }] }));
      const stores = deployed.map((c) => new KvEventStore(kv, c));
      const odd = Array.from({ length: 20 }, (_, i) => 2 * i + 1);
      assert.deepEqual((await stores[0]!.read("t/1")).map((e) => e.data), odd);
      assert.deepEqual((await kv.get(["dedup", "d", "m7"])).value, { stream: "t/1", seq: 4 }, "keys moved with them");
      const append = async (c: Committer, stream: string) =>
        (await c.write({ appends: [{ stream, event: { type: "N", data: "new" } }] })).positions[0];
      assert.deepEqual(await append(deployed[1]!, "t/1"), { stream: "t/1", seq: 21 });
      assert.deepEqual(await append(deployed[0]!, "s/topic"), { stream: "s/topic", seq: 3 }, "past the events");
      assert.deepEqual(await append(deployed[1]!, "t/gone"), { stream: "t/gone", seq: 4 }, "past the cursor");
      assert.deepEqual((await stores[1]!.read("s/topic")).map((e) => e.data), [0, 1, "new"]);
      assert.equal((await Array.fromAsync(kv.list({ prefix: keys.inboxAll() }))).length, 0, "the inbox is empty");
      assert.equal((await kv.get<{ instance: string }>(keys.writer())).value?.instance, SHARED);
      // A later start finds the KV shared: nothing to take over.
      assert.equal(await takeOverFromOneWriter(kv, retention), null);
      await Promise.all(deployed.map((c) => c.close()));
    } finally {
      await first.close().catch(() => {});
    }
  }));

/** Runs `fn` on a KV in a fresh file, closed and removed after. */
async function onKvFile(fn: (kv: Deno.Kv) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir();
  const kv = await Deno.openKv(`${dir}/test.kv`);
  try {
    await fn(kv);
  } finally {
    kv.close();
    await Deno.remove(dir, { recursive: true });
  }
}

/** Runs `fn` on a fresh KV whose writer epoch is claimed. */
function onFreshKv(fn: (kv: Deno.Kv, epoch: string) => Promise<void>): Promise<void> {
  return onKvFile(async (kv) => await fn(kv, await claimWriterEpoch(kv, "a")));
}

/**
 * A single writer acking every append from the inbox (unless `options` say otherwise), which claims
 * the KV's writer epoch as `name`: the one that claimed it before is as good as crashed.
 */
async function inboxWriter(kv: Deno.Kv, name: string, options: Partial<CommitterOptions> = {}): Promise<Committer> {
  const epoch = await claimWriterEpoch(kv, name);
  return new Committer({
    kv,
    mode: "single",
    clock: systemClock,
    epoch,
    inbox: () => true,
    inboxLimit: INBOX_LIMIT,
    ...options,
  });
}

/** Inbox entry `n`: event `seq` of stream `t/r`, its data `n`. */
const entry = (n: number, seq: number) => ({ n, stream: "t/r", seq, type: "N", data: n, at: 1 });

Deno.test("recovery moves the packed entries after the marker, and again one that already moved, then empties the inbox", () =>
  onFreshKv(async (kv, epoch) => {
    // Entries 6..9 wait; pack 3 still holds entry 5, moved (its pack goes once entry 6 moves).
    await kv.atomic()
      .set(keys.inboxMoved(), 5)
      .set(keys.inbox(3), { entries: [entry(5, 2), entry(6, 3)] })
      .set(keys.inbox(4), { entries: [entry(7, 4), entry(8, 5), entry(9, 6)] })
      .set(keys.event("t/r", 1), { type: "N", data: 1, at: 1 })
      .set(keys.event("t/r", 2), { type: "N", data: 5, at: 1 })
      .set(keys.event("t/r", 5), { type: "N", data: 8, at: 1 }) // moved before the marker caught up
      .commit();
    assert.deepEqual(await recoverInbox(kv, epoch), { moved: 4, next: 10, nextPack: 5 });
    const events = await Array.fromAsync(kv.list<{ data: number }>({ prefix: keys.eventsOf("t/r") }));
    assert.deepEqual(events.map((e) => [e.key[2], e.value.data]), [[1, 1], [2, 5], [3, 6], [4, 7], [5, 8], [6, 9]]);
    assert.equal((await kv.get(keys.inboxMoved())).value, 9);
    assert.deepEqual(await Array.fromAsync(kv.list({ prefix: keys.inboxAll() })), []);
  }));

Deno.test("recovery moves what an older version left in its ring of single entries", () =>
  onFreshKv(async (kv, epoch) => {
    // A ring of 8 slots; entries 6..9 wait (slots 6, 7, 0, 1); slot 2 still holds entry 2, moved long ago.
    await kv.atomic()
      .set(keys.inboxMoved(), 5)
      .set(keys.legacyInbox(2), entry(2, 2))
      .set(keys.legacyInbox(6), entry(6, 3))
      .set(keys.legacyInbox(7), entry(7, 4))
      .set(keys.legacyInbox(0), entry(8, 5))
      .set(keys.legacyInbox(1), {
        ...entry(9, 6),
        sets: [{ key: ["dedup", "d", "m9"], value: { stream: "t/r", seq: 6 } }],
      })
      .set(keys.event("t/r", 1), { type: "N", data: 1, at: 1 })
      .set(keys.event("t/r", 2), { type: "N", data: 2, at: 1 })
      .commit();
    assert.deepEqual(await recoverInbox(kv, epoch), { moved: 4, next: 10, nextPack: 1 });
    const events = await Array.fromAsync(kv.list<{ data: number }>({ prefix: keys.eventsOf("t/r") }));
    assert.deepEqual(events.map((e) => [e.key[2], e.value.data]), [[1, 1], [2, 2], [3, 6], [4, 7], [5, 8], [6, 9]]);
    assert.deepEqual((await kv.get(["dedup", "d", "m9"])).value, { stream: "t/r", seq: 6 });
    assert.deepEqual(await Array.fromAsync(kv.list({ prefix: keys.legacyInboxAll() })), []);
  }));

Deno.test("commit times never go back when the clock is set back", async () => {
  const dir = await Deno.makeTempDir();
  const kv = await Deno.openKv(`${dir}/test.kv`);
  const clock = handClock(Date.parse("2026-11-27T12:00:00Z"));
  const committer = new Committer({ kv, mode: "single", clock, epoch: await claimWriterEpoch(kv, "test") });
  try {
    const store = new KvEventStore(kv, committer);
    await store.append("s", [{ type: "N", data: 1 }]);
    clock.at -= 3 * 3_600_000;
    await store.append("s", [{ type: "N", data: 2 }]);
    clock.at += 3 * 3_600_000 + 5;
    await store.append("s", [{ type: "N", data: 3 }]);
    const at = (await store.read("s")).map((e) => e.at - Date.parse("2026-11-27T12:00:00Z"));
    assert.deepEqual(at, [0, 0, 5]);
  } finally {
    await committer.close();
    kv.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("KV store splits a burst of appends into commits within KV's mutation limit", async () => {
  const stats: CommitStats[] = [];
  const f = await kvStore("single", (s) => stats.push(s));
  try {
    await Promise.all(
      Array.from({ length: 3000 }, (_, i) => f.store.append(`s/${i % 700}`, [{ type: "N", data: i }])),
    );
    assert.ok(stats.length >= 4, `expected several commits, saw ${stats.length}`);
    assert.ok(stats.every((s) => s.mutations <= 1000), "a commit went over 1,000 mutations");
    assert.equal(stats.reduce((n, s) => n + s.requests, 0), 3000);
    assert.equal(await f.store.head("s/699"), 4);
  } finally {
    await f.close();
  }
});

Deno.test("a sustained burst of acks leaves room in each commit for background work, which lands among the first", async () => {
  const f = await kvStore("single");
  try {
    let acked = 0;
    const ack = (i: number) =>
      f.committer.write({ urgent: true, appends: [{ stream: `t/d-${i % 10}`, event: { type: "N", data: i } }] })
        .then(() => acked++);
    const acks = Array.from({ length: 2000 }, (_, i) => ack(i));
    // A lane's batch: its effects and cursor, queued behind a thousand acks with more to come.
    const batch = f.committer.write({ sets: [{ key: ["cur", "tasks", "t/lane"], value: 1 }] }).then(() => acked);
    acks.push(...Array.from({ length: 2000 }, (_, i) => ack(2000 + i)));
    const ackedBefore = await batch;
    await Promise.all(acks);
    assert.ok(ackedBefore <= 1000, `the batch waited for ${ackedBefore} of 4,000 acks`);
  } finally {
    await f.close();
  }
});

Deno.test("KV store refuses an event over KV's value limit without failing its neighbours", async () => {
  const f = await kvStore("single");
  try {
    const big = "x".repeat(70_000);
    const [bad, good] = await Promise.allSettled([
      f.store.append("s/big", [{ type: "Big", data: big }]),
      f.store.append("s/small", [{ type: "Small", data: 1 }]),
    ]);
    assert.equal(bad.status, "rejected");
    assert.ok((bad as PromiseRejectedResult).reason instanceof PayloadTooLargeError);
    assert.equal(good.status, "fulfilled");
    assert.equal(await f.store.head("s/big"), 0);
  } finally {
    await f.close();
  }
});

for (const inbox of [false, true]) {
  Deno.test(`an event KV cannot serialize fails alone and the writer goes on (${inbox ? "inbox" : "streams"})`, async () => {
    const f = await kvStore("single", undefined, () => inbox);
    try {
      let deep: unknown = [];
      for (let i = 0; i < 20_000; i++) deep = [deep];
      const [bad, good] = await Promise.allSettled([
        f.store.append("s/deep", [{ type: "Deep", data: deep }]),
        f.store.append("s/fine", [{ type: "Fine", data: 1 }]),
      ]);
      assert.equal(bad.status, "rejected");
      assert.equal(good.status, "fulfilled");
      assert.equal(await f.store.head("s/deep"), 0);
      await f.store.append("s/fine", [{ type: "Fine", data: 2 }]);
      assert.equal(await f.store.head("s/fine"), 2);
    } finally {
      await f.close();
    }
  });
}

Deno.test("packs of text that V8 stores two bytes a character stay within KV's value limit", async () => {
  const f = await kvStore("single", undefined, () => true);
  try {
    // Just under the size that goes straight to its stream, in JSON characters; twice that in V8's serialisation.
    const text = "水".repeat(PACK_BYTES - 100);
    const results = await Promise.allSettled(
      Array.from({ length: 40 }, (_, i) => f.store.append(`t/${i % 4}`, [{ type: "N", data: i % 2 ? text : i }])),
    );
    assert.deepEqual(results.filter((r) => r.status === "rejected"), []);
    await f.committer.flush();
    assert.equal((await f.store.read("t/1")).filter((e) => e.data === text).length, 10);
  } finally {
    await f.close();
  }
});

Deno.test("two writers in multi-writer mode on one KV interleave without gaps or lost events", async () => {
  const f = await kvStore("multi");
  const other = new KvEventStore(f.kv, new Committer({ kv: f.kv, mode: "multi", clock: systemClock }));
  try {
    await Promise.all(
      Array.from({ length: 200 }, (_, i) => (i % 2 ? f.store : other).append("s/shared", [{ type: "N", data: i }])),
    );
    const events = await f.store.read("s/shared");
    assert.deepEqual(events.map((e) => e.seq), Array.from({ length: 200 }, (_, i) => i + 1));
    assert.deepEqual(new Set(events.map((e) => e.data)).size, 200);
  } finally {
    await f.close();
  }
});

Deno.test("a single writer whose epoch was claimed by another process stops with LeaseLostError", async () => {
  const f = await kvStore("single");
  try {
    await f.store.append("s/a", [{ type: "N", data: 1 }]);
    await claimWriterEpoch(f.kv, "intruder");
    await assert.rejects(f.store.append("s/a", [{ type: "N", data: 2 }]), LeaseLostError);
    await assert.rejects(f.store.append("s/b", [{ type: "N", data: 3 }]), LeaseLostError);
    assert.equal(await f.store.head("s/a"), 1);
  } finally {
    await f.close();
  }
});

Deno.test("two requests checking the same key in one burst never both land (no lost update)", async () => {
  const f = await kvStore("single");
  try {
    const key = ["doc", "c", "x"];
    const seen = (await f.kv.get(key)).versionstamp;
    const results = await Promise.allSettled(
      [1, 2, 3].map((n) => f.committer.write({ sets: [{ key, value: n }], checks: [{ key, versionstamp: seen }] })),
    );
    assert.equal(results.filter((r) => r.status === "fulfilled").length, 1);
    assert.ok(
      results.filter((r) => r.status === "rejected").every((r) =>
        (r as PromiseRejectedResult).reason instanceof ConcurrencyError
      ),
    );
  } finally {
    await f.close();
  }
});

Deno.test("a landed write is answered before a later write is refused for the head it moved", async () => {
  const f = await kvStore("single");
  try {
    await f.committer.head("s");
    const order: string[] = [];
    const first = f.committer.write({ appends: [{ stream: "s", event: { type: "e", data: 1 } }] })
      .then(() => order.push("first landed"));
    await Promise.resolve(); // the first is in flight when the second comes
    const stale = f.committer.write({
      appends: [{ stream: "s", event: { type: "e", data: 2 } }],
      expectedHeads: { s: 0 },
    }).catch((err) => order.push(err instanceof ConcurrencyError ? "second refused" : String(err)));
    await Promise.all([first, stale]);
    assert.deepEqual(order, ["first landed", "second refused"]);
  } finally {
    await f.close();
  }
});

Deno.test("a landed write's answer does not wait for the head reads of the next commit", async () => {
  const dir = await Deno.makeTempDir();
  const kv = await Deno.openKv(`${dir}/test.kv`);
  const epoch = await claimWriterEpoch(kv, "test");
  let slow = false;
  const slowKv = new Proxy(kv, {
    get(target, key) {
      const v = Reflect.get(target, key);
      if (key === "getMany") {
        return async (...args: Parameters<Deno.Kv["getMany"]>) => {
          if (slow) await new Promise((r) => setTimeout(r, 300));
          return await target.getMany(...args);
        };
      }
      return typeof v === "function" ? v.bind(target) : v;
    },
  });
  const committer = new Committer({ kv: slowKv, mode: "single", clock: systemClock, epoch });
  try {
    await committer.head("known");
    slow = true; // reading the head of a stream new to the writer now takes 300 ms
    const t0 = performance.now();
    let answeredAfter = Infinity;
    const first = committer.write({ appends: [{ stream: "known", event: { type: "e", data: 1 } }] })
      .then(() => answeredAfter = performance.now() - t0);
    await Promise.resolve();
    const second = committer.write({ appends: [{ stream: "new", event: { type: "e", data: 2 } }] });
    await Promise.all([first, second]);
    assert.ok(answeredAfter < 150, `answered after ${Math.round(answeredAfter)} ms`);
  } finally {
    await committer.close();
    kv.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a head read that lands after a commit of the same stream does not take its seq back", async () => {
  const dir = await Deno.makeTempDir();
  const kv = await Deno.openKv(`${dir}/test.kv`);
  const epoch = await claimWriterEpoch(kv, "test");
  // Each gate opens by itself after 5 s at the latest: a change in the committer's reads must fail this, not hang it.
  const gate = () => {
    const g = Promise.withResolvers<void>();
    const timer = setTimeout(g.resolve, 5000);
    return { promise: g.promise, open: () => (clearTimeout(timer), g.resolve()) };
  };
  const readGate = gate(), moveGate = gate();
  let headReads = 0, commits = 0, holdCommits = true;
  // The first read of the head of "s" waits until released, while a commit of "s" loads the head itself and lands;
  // the commits after that one (its event's move out of the inbox) wait too, so that the late read cannot find it.
  const gatedKv = new Proxy(kv, {
    get(target, key) {
      const v = Reflect.get(target, key);
      if (key === "getMany") {
        return async (...args: Parameters<Deno.Kv["getMany"]>) => {
          const first = args[0].some((k) => k[0] === "head" && k[1] === "s") && headReads++ === 0;
          const read = await target.getMany(...args);
          if (first) await readGate.promise;
          return read;
        };
      }
      if (key === "atomic") {
        return () => {
          const op = target.atomic();
          const commit = op.commit.bind(op);
          op.commit = async () => (commits++ > 0 && holdCommits && await moveGate.promise, await commit());
          return op;
        };
      }
      return typeof v === "function" ? v.bind(target) : v;
    },
  });
  const committer = new Committer({ kv: gatedKv, mode: "single", clock: systemClock, epoch, inbox: () => true });
  try {
    const late = committer.head("s");
    const first = await committer.write({ appends: [{ stream: "s", event: { type: "e", data: 1 } }] });
    readGate.open();
    await late;
    holdCommits = false;
    moveGate.open();
    const second = await committer.write({ appends: [{ stream: "s", event: { type: "e", data: 2 } }] });
    assert.deepEqual([first.positions[0]!.seq, second.positions[0]!.seq], [1, 2]);
  } finally {
    moveGate.open();
    await committer.close();
    kv.close();
    await Deno.remove(dir, { recursive: true });
  }
});

/** A KV whose atomic operations note each key they set and its expiry. */
function notingSets(kv: Deno.Kv, noted: Map<string, number | undefined>): Deno.Kv {
  return new Proxy(kv, {
    get(target, prop) {
      if (prop === "atomic") {
        return () => {
          const op = target.atomic();
          const set = op.set.bind(op);
          op.set = (
            key,
            value,
            options,
          ) => (noted.set(JSON.stringify(key), options?.expireIn), set(key, value, options));
          return op;
        };
      }
      const v = Reflect.get(target, prop, target);
      return typeof v === "function" ? v.bind(target) : v;
    },
  });
}

for (const mode of ["single", "multi"] as const) {
  Deno.test(`events without a retention of their own are ${mode === "single" ? "kept with a far expiry (one local writer)" : "written with no expiry (several writers)"}; other keys keep theirs`, async () => {
    const dir = await Deno.makeTempDir();
    const raw = await Deno.openKv(`${dir}/test.kv`);
    const noted = new Map<string, number | undefined>();
    const kv = notingSets(raw, noted);
    const committer = new Committer({
      kv,
      mode,
      clock: systemClock,
      epoch: await claimWriterEpoch(raw, "test"),
      inbox: (s) => s.startsWith("t/"),
    });
    try {
      await committer.recover();
      await committer.write({
        appends: [
          { stream: "t/ch/dev-1", event: { type: "TaskQueued", data: 1 } },
          { stream: "p/dev-1", event: { type: "ReadingRecorded", data: 2 } },
          { stream: "m/news", event: { type: "MessagePublished", data: 3 }, expireIn: 5_000 },
        ],
        sets: [{ key: ["cursor", "t/ch/dev-1"], value: 1 }],
      });
      await committer.flush(); // the task leaves the inbox for its stream
      // One writer acks the task from an inbox pack first: its event is then written by the move.
      assert.equal([...noted.keys()].some((k) => k.startsWith('["inbox",')), mode === "single");

      const kept = mode === "single" ? EVENT_KEEP_MS : undefined;
      assert.equal(noted.get(JSON.stringify(keys.event("t/ch/dev-1", 1))), kept);
      assert.equal(noted.get(JSON.stringify(keys.event("p/dev-1", 1))), kept);
      assert.equal(noted.get(JSON.stringify(keys.event("m/news", 1))), 5_000);
      assert.ok(noted.has(JSON.stringify(["cursor", "t/ch/dev-1"])));
      assert.equal(noted.get(JSON.stringify(["cursor", "t/ch/dev-1"])), undefined);
      assert.notEqual((await raw.get(keys.event("t/ch/dev-1", 1))).versionstamp, null);
      assert.ok(EVENT_KEEP_MS >= 100 * 365 * 86_400_000 && Number.isSafeInteger(EVENT_KEEP_MS));
    } finally {
      await committer.close();
      raw.close();
      await Deno.remove(dir, { recursive: true });
    }
  });
}

Deno.test("one writer keeps a topic's head key up to date with every append, a stream without expiry within a second", async () => {
  const { kv, committer, close } = await kvStore("single");
  try {
    for (let i = 0; i < 5; i++) {
      await committer.write({ appends: [{ stream: "m/news", event: { type: "t", data: i }, expireIn: 3_600_000 }] });
      await committer.write({ appends: [{ stream: "p/pump", event: { type: "t", data: i } }] });
    }
    // Within the second: a topic's last events may expire while Sluice is down, and a head key that lagged
    // them would give their seqs out again; other streams' events outlive their head key's lag.
    assert.equal((await kv.get(keys.head("m/news"))).value, 5);
    assert.equal((await kv.get(keys.head("p/pump"))).value, 1);
  } finally {
    await close();
  }
});

for (const mode of ["single", "multi"] as const) {
  Deno.test(`a log read scans KV only where the stream may hold events from there (${mode} writer)`, async () => {
    const f = await kvStore(mode);
    const reads = new ReadBatcher(f.kv);
    const list = f.kv.list.bind(f.kv);
    let scans = 0;
    f.kv.list = ((...a: Parameters<Deno.Kv["list"]>) => (scans++, list(...a))) as Deno.Kv["list"];
    /** The log read and the scans it took. */
    const read = async (stream: string, from: number) => {
      scans = 0;
      const events = await readLog(f.kv, f.committer, stream, from, 1000, reads);
      return { data: events.map((e) => e.data), scans };
    };
    try {
      assert.deepEqual(await read("p/new", 1), { data: [], scans: 0 }, "no head key: no events to scan for");
      await f.committer.write({ appends: [1, 2, 3].map((i) => ({ stream: "p/x", event: { type: "N", data: i } })) });
      f.committer.forget(["p/x"]); // as a writer that never saw the stream (a restart)
      assert.deepEqual(await read("p/x", 1), { data: [1, 2, 3], scans: 1 });
      await f.committer.head("p/x");
      // One writer knows its head exactly: nothing past it to scan. Several writers' heads may move elsewhere.
      assert.deepEqual(await read("p/x", 4), { data: [], scans: mode === "single" ? 0 : 1 });
      assert.deepEqual(await read("p/x", 2), { data: [2, 3], scans: 1 });
    } finally {
      await f.close();
    }
  });
}

Deno.test("a clean close writes every stale head key, however many", async () => {
  const dir = await Deno.makeTempDir();
  const kv = await Deno.openKv(`${dir}/test.kv`);
  try {
    const committer = new Committer({
      kv,
      mode: "single",
      clock: systemClock,
      epoch: await claimWriterEpoch(kv, "test"),
    });
    const streams = Array.from({ length: 1200 }, (_, i) => `p/s${i}`);
    // The first append writes a stream's head key at once; the second leaves it behind (written lazily).
    for (let round = 0; round < 2; round++) {
      await Promise.all(
        streams.map((stream) => committer.write({ appends: [{ stream, event: { type: "N", data: round } }] })),
      );
    }
    await committer.close();
    const heads = await Promise.all(streams.map(async (s) => (await kv.get<number>(keys.head(s))).value));
    assert.deepEqual(new Set(heads), new Set([2]), "every head key written, not the first 500");
  } finally {
    kv.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a log read through the inbox has the events acked and not yet moved, each once, in order", async () => {
  const f = await kvStore("single", undefined, (s) => s.startsWith("p/"));
  try {
    const acks = await Promise.all(
      Array.from(
        { length: 300 },
        (_, i) => f.committer.write({ appends: [{ stream: "p/1", event: { type: "N", data: i } }] }),
      ),
    );
    const last = acks.at(-1)!.positions[0]!;
    assert.equal((await f.kv.get(["ev", "p/1", last.seq])).versionstamp, null, "not yet moved");
    const all = Array.from({ length: 300 }, (_, i) => i + 1);
    assert.deepEqual((await readLog(f.kv, f.committer, "p/1", 1, 1000)).map((e) => e.seq), all);
    assert.deepEqual((await readLog(f.kv, f.committer, "p/1", 101, 50)).map((e) => e.seq), all.slice(100, 150));
    // Read while the moves land: whatever has moved meanwhile is read from its key, and once.
    const moving = f.committer.flush();
    const during = await readLog(f.kv, f.committer, "p/1", 1, 1000);
    await moving;
    assert.deepEqual(during.map((e) => e.seq), all);
    assert.deepEqual((await readLog(f.kv, f.committer, "p/1", 1, 1000)).map((e) => e.seq), all);
    assert.equal(f.committer.unmovedFrom("p/1", 1, 1000).length, 0);
  } finally {
    await f.close();
  }
});
