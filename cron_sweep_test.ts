import assert from "node:assert/strict";
import { silentLogger } from "./core/log.ts";
import { cronSweep, type Started } from "./cron_sweep.ts";

/** A started instance whose sweep and AMQP deliveries the test controls. */
function instance(mode: "deploy" | "local", amqp?: Started["amqp"]) {
  const sweeps: number[] = [];
  const lines: string[] = [];
  const started: Started = {
    sluice: {
      mode,
      runner: { sweep: () => (sweeps.push(Date.now()), Promise.resolve(2)) },
      log: { ...silentLogger, info: (m: string) => lines.push(m) },
    } as unknown as Started["sluice"],
    amqp,
  };
  return { started, sweeps, lines };
}

Deno.test("a cron tick on an instance still starting waits for the start, then sweeps", async () => {
  const { started, sweeps, lines } = instance("deploy");
  const start = Promise.withResolvers<Started | null>();
  const tick = cronSweep(start.promise, { startWaitMs: 1000 });
  await new Promise((r) => setTimeout(r, 30));
  assert.equal(sweeps.length, 0);
  start.resolve(started);
  await tick;
  assert.equal(sweeps.length, 1);
  assert.deepEqual(lines, ["Cron sweep resumed 2 partition(s)"]);
});

Deno.test("a cron tick gives up on a start that does not end in time, and does nothing outside Deploy", async () => {
  const began = Date.now();
  await cronSweep(new Promise(() => {}), { startWaitMs: 50 });
  assert.ok(Date.now() - began < 1000);
  const { started, sweeps } = instance("local");
  await cronSweep(Promise.resolve(started));
  assert.equal(sweeps.length, 0);
});

Deno.test("a cron tick with AMQP stays busy while deliveries come, and ends once they pause", async () => {
  let received = 0;
  let lastDelivery = 0;
  let connected = false;
  // A delivery comes each time the tick looks, 30 in all: a stalled event loop cannot pass for a pause (a timer
  // feeding them every 10 ms did, on a loaded machine).
  let looksAfter = 0;
  const deliveries = () => {
    if (received === 30) looksAfter++;
    if (connected && received < 30) received++, lastDelivery = Date.now();
    return received;
  };
  const { started, lines } = instance("deploy", { ready: () => connected, received: deliveries });
  setTimeout(() => connected = true, 50);
  await cronSweep(Promise.resolve(started), { quietMs: 50, drainMaxMs: 10_000 });
  const ended = Date.now();
  assert.equal(received, 30);
  assert.ok(ended >= lastDelivery + 50, "the tick ended only once the deliveries had paused");
  assert.ok(looksAfter <= 2, `the tick looked ${looksAfter} times after the deliveries paused: it should end at once`);
  assert.ok(lines.some((l) => /^Cron tick: took \d+ AMQP message\(s\) from iot.ingest$/.test(l)), lines.join("\n"));
});

Deno.test({
  name: "a cron tick on an instance that has started leaves no timer behind (one a minute would pile up)",
  sanitizeOps: true,
  fn: async () => {
    const { started, sweeps } = instance("deploy");
    await cronSweep(Promise.resolve(started), { startWaitMs: 60_000 });
    assert.equal(sweeps.length, 1);
  },
});
