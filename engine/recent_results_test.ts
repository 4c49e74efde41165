import assert from "node:assert/strict";
import { RecentResults } from "./recent_results.ts";

Deno.test("recent results keep the newest and drop the oldest, a chunk at a time", () => {
  const results = new RecentResults(10);
  for (let i = 0; i < 5000; i++) results.set(`t${i}`, { result: i, attempts: 1, finishedAt: i });
  assert.equal(results.get("t4999")?.result, 4999);
  assert.equal(results.get("t4990")?.result, 4990, "the last `capacity` are always there");
  assert.equal(results.get("t0"), undefined);
  assert.equal(results.get("t3000"), undefined, "no more than a chunk beyond capacity is kept");
});
