import assert from "node:assert/strict";
import { keys } from "./keys.ts";
import { idOf, SeenIds } from "./seen_ids.ts";

const HOUR = 3_600_000;

function fakeClock(start = 0) {
  const clock = { t: start, now: () => clock.t };
  return clock;
}

async function loaded(seen: SeenIds): Promise<SeenIds> {
  const kv = await Deno.openKv(":memory:");
  try {
    await seen.load(kv);
  } finally {
    kv.close();
  }
  return seen;
}

Deno.test("an id that was added is always answered as maybe stored", async () => {
  const seen = await loaded(new SeenIds(HOUR, fakeClock()));
  for (let i = 0; i < 100_000; i++) seen.add(idOf(`pump-${i % 1000}`, `m-${i}`));
  for (let i = 0; i < 100_000; i++) assert.equal(seen.mayHave(idOf(`pump-${i % 1000}`, `m-${i}`)), true, `m-${i}`);
});

Deno.test("ids never added are answered as surely new, but for about one in a hundred", async () => {
  const seen = await loaded(new SeenIds(HOUR, fakeClock(), 1 << 20));
  for (let i = 0; i < 100_000; i++) seen.add(idOf("pump-1", `m-${i}`));
  let maybe = 0;
  for (let i = 0; i < 100_000; i++) if (seen.mayHave(idOf("pump-1", `other-${i}`))) maybe++;
  assert.ok(maybe < 2000, `${maybe} of 100,000 new ids answered as maybe stored`);
  assert.ok(!seen.mayHave(idOf("pump-2", "m-1")), "the sender is part of the id");
});

Deno.test("before the stored ids are loaded every id is maybe stored; loading reads the dedup keys in KV", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    await kv.set(keys.dedup("pump-1", "before-restart"), { stream: "t/x", seq: 1 });
    const seen = new SeenIds(HOUR, fakeClock());
    assert.equal(seen.mayHave(idOf("pump-1", "anything")), true);
    assert.equal(await seen.load(kv), 1);
    assert.equal(seen.loaded, true);
    assert.equal(seen.mayHave(idOf("pump-1", "before-restart")), true);
    assert.equal(seen.mayHave(idOf("pump-1", "never-sent")), false);
  } finally {
    kv.close();
  }
});

Deno.test("an id stays known for at least its dedup window and is forgotten two generations later", async () => {
  const clock = fakeClock();
  const seen = await loaded(new SeenIds(HOUR, clock, 1 << 16));
  seen.add(idOf("pump-1", "first"));
  clock.t = HOUR - 1;
  seen.add(idOf("pump-1", "m-1")); // the last moment of the first generation
  clock.t = 2 * HOUR + 1; // a window after it: a new generation has begun, the id's is the previous one
  assert.equal(seen.mayHave(idOf("pump-1", "m-1")), true);
  clock.t = 4 * HOUR;
  assert.equal(seen.mayHave(idOf("pump-1", "m-1")), false);
});

Deno.test("a generation holding more ids than it has room for answers maybe for every id", async () => {
  const seen = await loaded(new SeenIds(HOUR, fakeClock(), 1 << 10)); // room for about 100
  for (let i = 0; i < 200; i++) seen.add(idOf("pump-1", `m-${i}`));
  for (let i = 0; i < 50; i++) assert.equal(seen.mayHave(idOf("pump-1", `new-${i}`)), true);
});

Deno.test("loading stops when its signal is aborted, and ids stay maybe stored", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    await kv.set(keys.dedup("pump-1", "a"), 1);
    const stop = new AbortController();
    stop.abort();
    const seen = new SeenIds(HOUR, fakeClock());
    assert.equal(await seen.load(kv, stop.signal), null);
    assert.equal(seen.mayHave(idOf("pump-1", "b")), true);
  } finally {
    kv.close();
  }
});
