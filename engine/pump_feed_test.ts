import assert from "node:assert/strict";
import { pumpDecider, type PumpState } from "../actors/pump/decider.ts";
import { type Clock, handClock, systemClock } from "../core/clock.ts";
import { PUMPS_CHANNEL } from "../core/names.ts";
import { topicStream } from "../core/streams.ts";
import type { MessagePublishedData } from "../core/tasks.ts";
import { Committer } from "../store/committer.ts";
import { KvEventStore } from "../store/kv_event_store.ts";
import { claimWriterEpoch } from "../store/writer_epoch.ts";
import { PumpFeed } from "./pump_feed.ts";

const state = (id: string, version: number): PumpState => ({ ...pumpDecider.initialState(id), version });

/** A feed over a KV on disk with a 100 ms interval; `published()` reads back what it put on `_pumps`. */
async function feedFixture(clock: Clock = systemClock) {
  const dir = await Deno.makeTempDir();
  const kv = await Deno.openKv(`${dir}/test.kv`);
  const committer = new Committer({ kv, mode: "single", clock: systemClock, epoch: await claimWriterEpoch(kv, "t") });
  const errors: unknown[] = [];
  const feed = new PumpFeed(committer, clock, 60_000, (err) => errors.push(err), 100);
  return {
    feed,
    errors,
    published: async () => {
      await new Promise((r) => setTimeout(r, 250));
      await committer.flush();
      const events = await new KvEventStore(kv, committer).read(topicStream(PUMPS_CHANNEL));
      return events.map((e) => (e.data as MessagePublishedData).message as PumpState);
    },
    close: async () => {
      feed.close();
      await committer.close();
      kv.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

Deno.test("a pump that changes faster than the feed's interval is published at once, then with its latest state", async () => {
  const f = await feedFixture();
  try {
    for (let v = 1; v <= 10; v++) f.feed.changed("p-1", state("p-1", v));
    f.feed.changed("p-2", state("p-2", 1));
    assert.deepEqual((await f.published()).map((s) => [s.id, s.version]), [["p-1", 1], ["p-2", 1], ["p-1", 10]]);
    assert.deepEqual(f.errors, []);
  } finally {
    await f.close();
  }
});

Deno.test("a pump changed after the clock was set back is published within the interval, not hours later", async () => {
  const clock = handClock(Date.now());
  const f = await feedFixture(clock);
  try {
    f.feed.changed("p-1", state("p-1", 1));
    clock.at -= 3 * 3_600_000;
    f.feed.changed("p-1", state("p-1", 2));
    assert.deepEqual((await f.published()).map((s) => s.version), [1, 2]);
    assert.deepEqual(f.errors, []);
  } finally {
    await f.close();
  }
});
