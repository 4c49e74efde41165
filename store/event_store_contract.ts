import assert from "node:assert/strict";
import { ConcurrencyError } from "../core/errors.ts";
import type { EventStore } from "./event_store.ts";

/** A store under test and how to dispose of it. */
export interface StoreFixture {
  readonly store: EventStore;
  close(): Promise<void>;
}

/** The behaviour every `EventStore` implementation must show. */
export function eventStoreContract(name: string, make: () => Promise<StoreFixture>): void {
  const test = (what: string, fn: (store: EventStore) => Promise<void>) =>
    Deno.test(`${name}: ${what}`, async () => {
      const f = await make();
      try {
        await fn(f.store);
      } finally {
        await f.close();
      }
    });

  test("an empty stream has head 0 and no events", async (store) => {
    assert.equal(await store.head("s/empty"), 0);
    assert.deepEqual(await store.read("s/empty"), []);
  });

  test("appends get consecutive seqs from 1 and read back in order", async (store) => {
    const a = await store.append("s/a", [{ type: "X", data: 1 }, { type: "X", data: 2 }]);
    const b = await store.append("s/a", [{ type: "Y", data: { v: 3 } }]);
    assert.deepEqual([a.first, a.last, b.first, b.last], [1, 2, 3, 3]);
    const events = await store.read("s/a");
    assert.deepEqual(events.map((e) => [e.seq, e.type, e.data]), [[1, "X", 1], [2, "X", 2], [3, "Y", { v: 3 }]]);
    assert.equal(await store.head("s/a"), 3);
  });

  test("read honours from and limit", async (store) => {
    for (let i = 1; i <= 10; i++) await store.append("s/r", [{ type: "N", data: i }]);
    const page = await store.read("s/r", 4, 3);
    assert.deepEqual(page.map((e) => e.data), [4, 5, 6]);
    assert.deepEqual(await store.read("s/r", 11), []);
  });

  test("concurrent appends to many streams keep each stream gap-free", async (store) => {
    const streams = ["s/1", "s/2", "s/3", "s/4"];
    await Promise.all(
      Array.from({ length: 400 }, (_, i) => store.append(streams[i % 4]!, [{ type: "N", data: i }])),
    );
    for (const [k, s] of streams.entries()) {
      const events = await store.read(s);
      assert.deepEqual(events.map((e) => e.seq), Array.from({ length: 100 }, (_, i) => i + 1));
      assert.deepEqual(events.map((e) => e.data), Array.from({ length: 100 }, (_, i) => i * 4 + k));
    }
  });

  test("an append with a stale expected head fails with a ConcurrencyError and writes nothing", async (store) => {
    await store.append("s/c", [{ type: "A", data: null }], { expectedHead: 0 });
    await assert.rejects(
      store.append("s/c", [{ type: "B", data: null }], { expectedHead: 0 }),
      ConcurrencyError,
    );
    assert.equal(await store.head("s/c"), 1);
    const ok = await store.append("s/c", [{ type: "B", data: null }], { expectedHead: 1 });
    assert.equal(ok.last, 2);
  });

  test("of two racing appends expecting the same head exactly one wins", async (store) => {
    const results = await Promise.allSettled([
      store.append("s/race", [{ type: "A", data: 1 }], { expectedHead: 0 }),
      store.append("s/race", [{ type: "A", data: 2 }], { expectedHead: 0 }),
    ]);
    assert.equal(results.filter((r) => r.status === "fulfilled").length, 1);
    assert.equal(await store.head("s/race"), 1);
  });
}
