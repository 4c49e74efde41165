import assert from "node:assert/strict";
import { RateLimiter } from "./rate_limiter.ts";

/** A clock the test moves by hand. */
const handClock = (at: number) => ({
  at,
  now() {
    return this.at;
  },
});

Deno.test("a device that used its burst gets tokens again as time passes", () => {
  const clock = handClock(1_000_000);
  const limiter = new RateLimiter(10, 2, clock);
  assert.deepEqual([limiter.take("d"), limiter.take("d"), limiter.take("d")], [true, true, false]);
  clock.at += 100;
  assert.equal(limiter.take("d"), true);
  assert.equal(limiter.take("other"), true);
});

Deno.test("a clock set back by hours does not lock a device out for as long", () => {
  const clock = handClock(Date.parse("2026-11-27T12:00:00Z"));
  const limiter = new RateLimiter(10, 2, clock);
  assert.equal(limiter.take("d"), true);
  clock.at -= 3 * 3_600_000;
  assert.equal(limiter.take("d"), true);
  assert.equal(limiter.take("d"), false);
  clock.at += 1_000;
  assert.equal(limiter.take("d"), true);
});
