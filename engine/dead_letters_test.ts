import assert from "node:assert/strict";
import { valueSize } from "../core/kv_size.ts";
import type { Committer } from "../store/committer.ts";
import { keys } from "../store/keys.ts";
import { chunked } from "../store/kv_limits.ts";
import { DEAD_LETTER_BYTES, type DeadLetter, DeadLetters, withinValueLimit } from "./dead_letters.ts";

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

Deno.test("a page of 1,000 dead letters (the most one page takes) is listed, and the next page follows it", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    const ids = Array.from({ length: 1001 }, (_, i) => `dC9j.${String(i + 1).padStart(4, "0")}`);
    for (const group of chunked(ids, 500)) {
      const op = kv.atomic();
      for (const taskId of group) op.set(keys.deadLetter(taskId), { ...letter(null, ["x"]), taskId });
      await op.commit();
    }
    const letters = new DeadLetters(kv, null as unknown as Committer, 60_000);
    const first = await letters.list(1000);
    assert.equal(first.deadLetters.length, 1000);
    assert.equal(first.next, ids[999]);
    const second = await letters.list(1000, first.next!);
    assert.deepEqual(second.deadLetters.map((d) => d.taskId), [ids[1000]]);
    assert.equal(second.next, null);
  } finally {
    kv.close();
  }
});
