import assert from "node:assert/strict";
import { OrderedLanes } from "./ordered_lanes.ts";

const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));

Deno.test("jobs of one key run in order, jobs of different keys overlap", async () => {
  const lanes = new OrderedLanes();
  const log: string[] = [];
  let running = 0, overlap = 0;
  const job = (name: string, ms: number) => async () => {
    running++;
    overlap = Math.max(overlap, running);
    log.push(`start ${name}`);
    await tick(ms);
    log.push(`end ${name}`);
    running--;
  };
  lanes.run("a", job("a1", 20));
  lanes.run("a", job("a2", 1));
  lanes.run("b", job("b1", 5));
  await lanes.idle();
  assert.ok(log.indexOf("end a1") < log.indexOf("start a2"), log.join(", "));
  assert.equal(overlap, 2);
  assert.equal(lanes.busy, 0);
});

Deno.test("a failing job does not stop the jobs behind it", async () => {
  const lanes = new OrderedLanes();
  const ran: number[] = [];
  lanes.run("k", () => Promise.reject(new Error("boom")));
  lanes.run("k", () => Promise.resolve(void ran.push(2)));
  await lanes.idle();
  assert.deepEqual(ran, [2]);
});
