import assert from "node:assert/strict";
import { KvLease } from "./kv_lease.ts";

Deno.test("one holder at a time; the lease is free again once released or expired", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    let now = 1_000;
    const clock = { now: () => now };
    const a = new KvLease(kv, ["lease"], "a", 10_000, clock);
    const b = new KvLease(kv, ["lease"], "b", 10_000, clock);
    assert.equal(await a.claim(), true);
    assert.equal(await b.claim(), false);
    assert.equal(await a.claim(), true, "the holder renews");
    await b.release();
    assert.equal(await b.claim(), false, "releasing someone else's lease does nothing");
    now += 10_001;
    assert.equal(await b.claim(), true, "an expired lease is free");
    assert.equal(await a.claim(), false);
    await b.release();
    assert.equal(await a.claim(), true, "a released lease is free");
  } finally {
    kv.close();
  }
});
