import assert from "node:assert/strict";
import { valueSize } from "../core/kv_size.ts";
import { DEAD_LETTER_BYTES, type DeadLetter, withinValueLimit } from "./dead_letters.ts";

const letter = (params: unknown, errors: string[]): DeadLetter => ({
  taskId: "dC9j.1",
  stream: "t/c/d",
  consumer: "tasks",
  seq: 1,
  method: "test/fail",
  params,
  device: "d",
  attempts: errors.length,
  errors: errors.map((error, i) => ({ attempt: i + 1, at: i, error })),
  deadAt: 0,
});

Deno.test("a dead letter with the biggest params and long errors drops its oldest errors to fit a KV value", () => {
  const dead = withinValueLimit(letter({ pad: "a".repeat(60 * 1024) }, ["温".repeat(2000), "温".repeat(2000)]));
  assert.ok(valueSize(dead) <= DEAD_LETTER_BYTES, `${valueSize(dead)} bytes`);
  assert.deepEqual(dead.params, { pad: "a".repeat(60 * 1024) }, "the params stay whole: a retry queues them");
  assert.equal(dead.errors.length, 1);
  assert.equal(dead.errors[0]!.attempt, 2, "the latest error is kept");
  assert.ok(dead.errors[0]!.error.endsWith("…"), "and cut where even it does not fit");
});

Deno.test("a dead letter that fits is kept as it is", () => {
  const dead = letter({ n: 1 }, ["a", "b"]);
  assert.equal(withinValueLimit(dead), dead);
});
