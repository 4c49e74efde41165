import assert from "node:assert/strict";
import { systemClock } from "../core/clock.ts";
import type { Decider } from "./decider.ts";
import { ActorRuntime, type LoggedEvent, type Snapshot } from "./runtime.ts";

interface Count {
  readonly version: number;
  readonly count: number;
}
type Added = { readonly type: "Added"; readonly seq?: number };

const counter: Decider<Count, "add", Added> = {
  initialState: () => ({ version: 0, count: 0 }),
  decide: () => [{ type: "Added" }],
  evolve: (s, e) => ({ version: e.seq ?? s.version + 1, count: s.count + 1 }),
};

Deno.test("an event committed while the state is being re-read from the log is counted once", async () => {
  const log: LoggedEvent[] = [];
  let release = () => {};
  let slowReads = false;
  const runtime = new ActorRuntime<Count, "add", Added>({
    decider: counter,
    streamOf: (id) => `c/${id}`,
    clock: systemClock,
    verifyHead: () => Promise.resolve(log.length),
    storage: {
      read: async (_stream, from) => {
        if (slowReads) await new Promise<void>((r) => release = r);
        return log.filter((e) => e.seq >= from);
      },
      loadSnapshot: () => Promise.resolve(null),
      saveSnapshot: () => Promise.resolve(),
    },
  });
  assert.equal((await runtime.state("a")).count, 0);
  // Another writer's event makes the next read of the state go to the log...
  log.push({ seq: 1, type: "Added", data: {}, at: 1 });
  slowReads = true;
  const reading = runtime.state("a");
  await new Promise((r) => setTimeout(r, 0));
  // ...and while that read is out, our own commit of the same event lands.
  runtime.applyCommitted("a", [log[0]!]);
  release();
  assert.deepEqual(await reading, { version: 1, count: 1 });
});

Deno.test("a snapshot of another state shape is not used: the state is replayed from the log, then saved anew", async () => {
  const log: LoggedEvent[] = [1, 2, 3].map((seq) => ({ seq, type: "Added", data: {}, at: seq }));
  // An old version's snapshot: a count that replay would not give, saved without a shape.
  let saved: Snapshot<Count> | null = { version: 3, at: 3, state: { version: 3, count: 99 } };
  const storage = {
    read: (_stream: string, from: number) => Promise.resolve(log.filter((e) => e.seq >= from)),
    loadSnapshot: () => Promise.resolve(saved),
    saveSnapshot: (_stream: string, snapshot: Snapshot<Count>) => Promise.resolve(void (saved = snapshot)),
  };
  const runtime = (decider: Decider<Count, "add", Added>) =>
    new ActorRuntime<Count, "add", Added>({
      decider,
      streamOf: (id) => `c/${id}`,
      clock: systemClock,
      storage,
      snapshotEvery: 2,
    });
  assert.equal((await runtime(counter).state("a")).count, 99, "shape 1 (unset) reads a shape-1 snapshot");
  const reshaped = { ...counter, stateShape: 2 };
  assert.equal((await runtime(reshaped).state("a")).count, 3);
  assert.equal((await runtime(reshaped).stateAt("a", { version: 3 })).count, 3);
  await new Promise((r) => setTimeout(r, 0));
  assert.deepEqual(saved, { version: 3, at: 3, state: { version: 3, count: 3 }, shape: 2 });

  // A decider that can bring an old shape up to date uses the snapshot (no replay of the whole log).
  saved = { version: 3, at: 3, state: { version: 3, count: 99 } };
  const upcasting = { ...reshaped, upcast: (old: unknown) => ({ ...(old as Count), count: (old as Count).count + 1 }) };
  assert.equal((await runtime(upcasting).state("a")).count, 100);
});
