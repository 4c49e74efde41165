import assert from "node:assert/strict";
import { AuthThrottle } from "./auth_throttle.ts";

Deno.test("failed authentications from one address are answered ever more slowly, then refused", () => {
  let now = 0;
  const t = new AuthThrottle({ now: () => now }, { freeFailures: 2, blockAfter: 6, windowMs: 60_000, maxDelayMs: 400 });
  assert.deepEqual([1, 2, 3, 4, 5].map(() => t.failed("1.2.3.4")), [0, 0, 100, 200, 400]);
  assert.equal(t.blocked("1.2.3.4"), false);
  t.failed("1.2.3.4");
  assert.equal(t.blocked("1.2.3.4"), true);
  assert.equal(t.blocked("5.6.7.8"), false, "other addresses are not affected");
  now = 61_000;
  assert.equal(t.blocked("1.2.3.4"), false, "the penalty ends with its window");
  assert.equal(t.failed("1.2.3.4"), 0);
});
