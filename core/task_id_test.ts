import assert from "node:assert/strict";
import { positionalTaskId, positionOfTaskId, randomTaskId } from "./task_id.ts";

Deno.test("a positional task id decodes back to its stream and seq", () => {
  const id = positionalTaskId("t/blog_queuing/pump-7", 12345);
  assert.deepEqual(positionOfTaskId(id), { stream: "t/blog_queuing/pump-7", seq: 12345 });
});

Deno.test("random and malformed task ids have no position", () => {
  assert.equal(positionOfTaskId(randomTaskId()), null);
  for (const bad of ["", ".", "abc", "abc.", "!!!.1", "dC9h.0", "dC9h.-1", "eC94.1", "dC9h.1x!"]) {
    assert.equal(positionOfTaskId(bad), null, bad);
  }
});
