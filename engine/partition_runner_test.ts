import assert from "node:assert/strict";
import { unbroken } from "./partition_runner.ts";

const event = (seq: number) => ({ stream: "t/c/d", seq, type: "TaskQueued", data: {}, at: 0 });

Deno.test("a lane runs only the events that follow its cursor without a gap", () => {
  assert.deepEqual(unbroken([event(5), event(6), event(8)], 5).map((e) => e.seq), [5, 6]);
  assert.deepEqual(unbroken([event(6), event(7)], 5), [], "the next task is still in the inbox: wait for its move");
  assert.deepEqual(unbroken([], 1), []);
});
