import assert from "node:assert/strict";
import { afterFailure, ERRORS_BYTES, nextAttempt, type RetryState } from "./retry_policy.ts";
import { valueSize } from "../../core/kv_size.ts";

const rules = { maxAttempts: 3, baseDelayMs: 100 };
const task = { seq: 7, taskId: "t1" };

Deno.test("a first failure schedules a retry after the base delay", () => {
  const r = afterFailure(null, task, "boom", 1000, rules);
  assert.equal(r.kind, "retry");
  if (r.kind === "retry") {
    assert.equal(r.state.attempts, 1);
    assert.equal(r.state.nextAt, 1100);
    assert.deepEqual(r.state.errors, [{ attempt: 1, at: 1000, error: "boom" }]);
  }
});

Deno.test("the delay doubles with each failure and the task is dead after the last attempt", () => {
  const first = afterFailure(null, task, "a", 0, rules);
  assert.equal(first.kind, "retry");
  const second = afterFailure(first.kind === "retry" ? first.state : null, task, "b", 100, rules);
  assert.equal(second.kind === "retry" && second.state.nextAt, 300);
  const third = afterFailure(second.kind === "retry" ? second.state : null, task, "c", 300, rules);
  assert.equal(third.kind, "dead");
  assert.deepEqual(third.kind === "dead" && third.errors.map((e) => e.error), ["a", "b", "c"]);
});

Deno.test("a retry record of another task does not count towards this one", () => {
  const other = afterFailure(null, { seq: 6, taskId: "t0" }, "x", 0, rules);
  const r = afterFailure(other.kind === "retry" ? other.state : null, task, "y", 0, rules);
  assert.equal(r.kind === "retry" && r.state.attempts, 1);
  assert.equal(nextAttempt(other.kind === "retry" ? other.state : null, 7), 1);
  assert.equal(nextAttempt(other.kind === "retry" ? other.state : null, 6), 2);
});

Deno.test("a permanent failure is dead at once", () => {
  const r = afterFailure(null, task, "cannot parse", 0, rules, true);
  assert.equal(r.kind, "dead");
  assert.equal(r.kind === "dead" && r.attempts, 1);
});

Deno.test("a retry record keeps the latest errors that fit ERRORS_BYTES as KV stores them, the last one always", () => {
  const many = { maxAttempts: 30, baseDelayMs: 1 };
  let state: RetryState | null = null;
  for (let i = 1; i <= 25; i++) {
    const r = afterFailure(state, task, `${i}:${"温".repeat(1995)}`, i, many);
    assert.equal(r.kind, "retry");
    if (r.kind === "retry") state = r.state;
  }
  assert.equal(state!.attempts, 25);
  assert.ok(valueSize(state!.errors) <= ERRORS_BYTES, `${valueSize(state!.errors)} bytes`);
  assert.ok(state!.errors.length >= 2 && state!.errors.length < 20);
  assert.equal(state!.errors.at(-1)!.attempt, 25, "the latest is kept");
  // Short errors: the last 20.
  const short = afterFailure(
    { ...state!, errors: Array.from({ length: 20 }, (_, i) => ({ attempt: i, at: i, error: "e" })) },
    task,
    "x",
    0,
    many,
  );
  assert.equal(short.kind === "retry" ? short.state.errors.length : 0, 20);
});
