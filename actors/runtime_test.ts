import assert from "node:assert/strict";
import { systemClock } from "../core/clock.ts";
import type { Decider } from "./decider.ts";
import { ActorRuntime, type LoggedEvent } from "./runtime.ts";

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
