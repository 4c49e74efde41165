import assert from "node:assert/strict";
import {
  ForbiddenError,
  MalformedJsonError,
  NotFoundError,
  RateLimitedError,
  UnauthorizedError,
  UnavailableError,
} from "../../core/errors.ts";
import { outcomeOf } from "./outcome.ts";

Deno.test("bad payloads, unknown channels and scripts are refused and recorded", () => {
  assert.deepEqual(outcomeOf(new MalformedJsonError("Body is not valid JSON"), "ingest"), {
    kind: "refused",
    code: "malformed_json",
    reason: "Body is not valid JSON",
  });
  assert.equal(outcomeOf(new NotFoundError('Unknown script "x"'), "ingest").kind, "refused");
});

Deno.test("a bad token in the topic is refused, an anonymous sender on a closed route is disconnected", () => {
  assert.equal(outcomeOf(new UnauthorizedError("Unknown or revoked token"), "topic").kind, "refused");
  assert.equal(outcomeOf(new UnauthorizedError("Queueing a task needs a device token"), "ingest").kind, "forbidden");
  assert.equal(outcomeOf(new ForbiddenError("Another device's route"), "topic").kind, "forbidden");
});

Deno.test("the rate limit is a quota outcome, never a record", () => {
  assert.deepEqual(outcomeOf(new RateLimitedError(), "ingest"), { kind: "quota" });
});

Deno.test("anything that may pass is retried: no PUBACK", () => {
  assert.equal(outcomeOf(new UnavailableError("KV is down"), "ingest").kind, "retry");
  assert.equal(outcomeOf(new Error("boom"), "ingest").kind, "retry");
});
