import assert from "node:assert/strict";
import { MalformedJsonError, NotFoundError, RateLimitedError, UnavailableError } from "../../core/errors.ts";
import { MAX_UNEXPECTED_ATTEMPTS, outcomeOf } from "./outcome.ts";
import { redactTokens } from "../../core/names.ts";

Deno.test("a message that is wrong is dead-lettered with its code and reason", () => {
  assert.deepEqual(outcomeOf(new MalformedJsonError("Body is not valid JSON: x"), 0), {
    action: "dead-letter",
    code: "malformed_json",
    reason: "Body is not valid JSON: x",
    record: true,
  });
  assert.equal(outcomeOf(new NotFoundError('Unknown script "a/b"'), 0).action, "dead-letter");
});

Deno.test("a message over the rate limit is dead-lettered without a refused-log record", () => {
  const o = outcomeOf(new RateLimitedError(), 0);
  assert.equal(o.action === "dead-letter" && o.record, false);
});

Deno.test("an unavailable dependency is retried with a growing, capped pause", () => {
  const delays = [0, 1, 2, 20, 100].map((a) => outcomeOf(new UnavailableError("KV is down"), a));
  assert.ok(delays.every((o) => o.action === "retry"));
  assert.deepEqual(delays.map((o) => o.action === "retry" && o.delayMs), [50, 100, 200, 5000, 5000]);
});

Deno.test("an unexpected error is retried a few times, then dead-lettered as internal", () => {
  assert.equal(outcomeOf(new TypeError("oops"), 0).action, "retry");
  const last = outcomeOf(new TypeError("oops"), MAX_UNEXPECTED_ATTEMPTS - 1);
  assert.equal(last.action, "dead-letter");
  assert.equal(last.action === "dead-letter" && last.code, "internal");
});

Deno.test("a token that ended up in a reason is hidden", () => {
  const token = "sl_" + "a1B2-c3_D4".repeat(4);
  const o = outcomeOf(new NotFoundError(`Channel "${token}" does not exist`), 0);
  assert.equal(o.action === "dead-letter" && o.reason, 'Channel "sl_…" does not exist');
  assert.equal(redactTokens('Channel "sl_short" does not exist'), 'Channel "sl_short" does not exist');
  assert.equal(redactTokens(`device_${token} and Bearer${token}`), "device_sl_… and Bearersl_…");
});
