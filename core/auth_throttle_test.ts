import assert from "node:assert/strict";
import { AuthThrottle, MAX_ADDRESSES } from "./auth_throttle.ts";

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

Deno.test("past MAX_ADDRESSES addresses within a minute the throttle forgets the oldest, not every new one", () => {
  let now = 0;
  const t = new AuthThrottle({ now: () => now });
  const address = (i: number) => `10.${i >> 16}.${(i >> 8) & 255}.${i & 255}`;
  for (let i = 0; i < 15; i++) t.failed("first");
  assert.ok(t.failed("first") > 0, "the 16th failure of an address is delayed");
  for (let i = 0; i < MAX_ADDRESSES; i++) {
    now = Math.floor(i / 1000); // all within the minute: nothing expires
    t.failed(address(i));
  }
  assert.equal(t.failed("first"), 0, "the oldest address was forgotten to keep the bound");
  const last = address(MAX_ADDRESSES - 1);
  for (let i = 0; i < 9; i++) t.failed(last);
  assert.ok(t.failed(last) > 0, "a recent address is still remembered: its 11th failure is delayed");
});
