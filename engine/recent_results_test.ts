import assert from "node:assert/strict";
import { RecentResults } from "./recent_results.ts";

Deno.test("recent results keep the newest and drop the oldest, a chunk at a time", () => {
  const results = new RecentResults(10);
  for (let i = 0; i < 5000; i++) results.set(`t${i}`, { result: i, attempts: 1, finishedAt: i }, String(i).length);
  assert.equal(results.get("t4999")?.result, 4999);
  assert.equal(results.get("t4990")?.result, 4990, "the last `capacity` are always there");
  assert.equal(results.get("t0"), undefined);
  assert.equal(results.get("t3000"), undefined, "no more than a chunk beyond capacity is kept");
});

Deno.test("recent results stay within their size budget, the oldest going first, the newest kept whatever its size", () => {
  const results = new RecentResults(10_000, 1000);
  const big = (n: number) => ({ result: "x".repeat(n), attempts: 1, finishedAt: 0 });
  for (let i = 0; i < 50; i++) results.set(`t${i}`, big(98), 100); // 5,000 characters asked, 1,000 allowed
  assert.equal(results.get("t49")?.result, "x".repeat(98));
  assert.ok(results.get("t40"), "the newest 1,000 characters' worth are kept");
  assert.equal(results.get("t39"), undefined, "older ones are dropped");
  assert.equal(results.get("t0"), undefined);
  results.set("huge", big(5000), 5002);
  assert.ok(results.get("huge"), "a result over the whole budget is still kept, alone");
  assert.equal(results.get("t49"), undefined);
  results.set("t50", big(98), 100);
  assert.equal(results.get("huge"), undefined, "and goes with the next one");
  assert.ok(results.get("t50"));
});
