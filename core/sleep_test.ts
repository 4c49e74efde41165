import assert from "node:assert/strict";
import { sleep } from "./sleep.ts";

Deno.test("sleep ends at its time, or at once when its signal aborts, and leaves no listener behind", async () => {
  const ac = new AbortController();
  let listeners = 0;
  const add = ac.signal.addEventListener.bind(ac.signal);
  const remove = ac.signal.removeEventListener.bind(ac.signal);
  ac.signal.addEventListener = ((...args: Parameters<typeof add>) => (listeners++, add(...args))) as typeof add;
  ac.signal.removeEventListener =
    ((...args: Parameters<typeof remove>) => (listeners--, remove(...args))) as typeof remove;
  for (let n = 0; n < 3; n++) await sleep(1, ac.signal);
  assert.equal(listeners, 0, "a sleep that ran out removed its listener");
  const started = performance.now();
  const long = sleep(10_000, ac.signal);
  ac.abort();
  await long;
  assert.ok(performance.now() - started < 1000);
  await sleep(10_000, ac.signal); // aborted already: at once
});
