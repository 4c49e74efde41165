import assert from "node:assert/strict";
import { positionalTaskId, positionOfTaskId, randomTaskId, subscriberRunId, subscriberRunOf } from "./task_id.ts";

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

Deno.test("a task id has one spelling: another base64 text of the same bytes is no task's id", () => {
  const id = positionalTaskId("t/blog_queuing/a", 4); // 16 bytes: the last base64 character has 4 spare bits
  assert.equal(id, "dC9ibG9nX3F1ZXVpbmcvYQ.4");
  assert.deepEqual(positionOfTaskId(id), { stream: "t/blog_queuing/a", seq: 4 });
  for (const other of ["dC9ibG9nX3F1ZXVpbmcvYR.4", "dC9ibG9nX3F1ZXVpbmcvYf.4", "dC9ibG9nX3F1ZXVpbmcvYQ==.4"]) {
    assert.equal(positionOfTaskId(other), null, other);
  }
});

Deno.test("a subscriber run's id decodes back to its topic, seq and script, and is no task position", () => {
  const id = subscriberRunId("m/alerts", 42, "app/notify/email");
  assert.deepEqual(subscriberRunOf(id), { stream: "m/alerts", seq: 42, script: "app/notify/email" });
  assert.equal(positionOfTaskId(id), null);
  assert.equal(subscriberRunOf(positionalTaskId("t/alerts/d", 1)), null);
  const taskStreamRun = `s.${positionalTaskId("t/alerts/d", 1)}.x`;
  for (const bad of ["s.", "s.x", "s..x", `${id.slice(0, id.lastIndexOf("."))}.`, taskStreamRun]) {
    assert.equal(subscriberRunOf(bad), null, bad);
  }
});
