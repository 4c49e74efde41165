import assert from "node:assert/strict";
import { ReadBatcher } from "./read_batcher.ts";

/** An in-memory KV whose `getMany` calls are recorded. */
async function watchedKv(): Promise<{ kv: Deno.Kv; calls: Deno.KvKey[][] }> {
  const kv = await Deno.openKv(":memory:");
  const calls: Deno.KvKey[][] = [];
  const getMany = kv.getMany.bind(kv);
  kv.getMany = ((keys: Deno.KvKey[]) => (calls.push(keys), getMany(keys))) as typeof kv.getMany;
  return { kv, calls };
}

Deno.test("reads asked together go ten keys a KV call, each answered with its own key's entry", async () => {
  const { kv, calls } = await watchedKv();
  try {
    for (let i = 0; i < 25; i += 2) await kv.set(["k", i], `v${i}`);
    const reads = new ReadBatcher(kv);
    const entries = await Promise.all(Array.from({ length: 25 }, (_, i) => reads.get<string>(["k", i])));
    assert.deepEqual(entries.map((e) => e.value), Array.from({ length: 25 }, (_, i) => (i % 2 ? null : `v${i}`)));
    assert.deepEqual(entries.map((e) => e.key), Array.from({ length: 25 }, (_, i) => ["k", i]));
    assert.deepEqual(calls.map((c) => c.length), [10, 10, 5]);
  } finally {
    kv.close();
  }
});

Deno.test("a read someone waits on goes before the reads of background work asked earlier", async () => {
  const { kv, calls } = await watchedKv();
  try {
    const reads = new ReadBatcher(kv);
    const background = Array.from({ length: 60 }, (_, i) => reads.get(["bg", i]));
    const urgent = [reads.get(["token", 1], true), reads.get(["token", 2], true)];
    await Promise.all([...background, ...urgent]);
    assert.deepEqual(calls[0]!.slice(0, 2), [["token", 1], ["token", 2]]);
    assert.equal(calls.flat().length, 62);
  } finally {
    kv.close();
  }
});

Deno.test("urgent reads never take a whole call while other reads wait: a stream of them cannot starve the rest", async () => {
  const { kv, calls } = await watchedKv();
  try {
    const reads = new ReadBatcher(kv);
    const urgent = Array.from({ length: 100 }, (_, i) => reads.get(["token", i], true));
    const background = reads.get(["lane", 1]);
    await Promise.all([...urgent, background]);
    assert.deepEqual(calls[0]!.at(-1), ["lane", 1], "the first call takes it after nine urgent reads");
    assert.equal(calls[0]!.length, 10);
  } finally {
    kv.close();
  }
});

Deno.test("a key KV refuses fails its own read, not the reads that went in the same call", async () => {
  const { kv } = await watchedKv();
  try {
    await kv.set(["ok"], 1);
    const reads = new ReadBatcher(kv);
    const [good, bad] = await Promise.allSettled([reads.get(["ok"]), reads.get(["x".repeat(3000)])]);
    assert.equal(good.status === "fulfilled" && good.value.value, 1);
    assert.equal(bad.status, "rejected");
  } finally {
    kv.close();
  }
});

Deno.test("reads queued when KV closes fail, and nothing is left unhandled", async () => {
  const { kv } = await watchedKv();
  const reads = new ReadBatcher(kv);
  const pending = Array.from({ length: 30 }, (_, i) => reads.get(["k", i]));
  kv.close();
  const settled = await Promise.allSettled(pending);
  assert.ok(settled.every((s) => s.status === "rejected"), JSON.stringify(settled.map((s) => s.status)));
});
