import assert from "node:assert/strict";
import { LogBudget } from "./log_budget.ts";

Deno.test("a log budget lets the first lines of a window through and tells the rest in one line", () => {
  const lines: string[] = [];
  let now = 0;
  const budget = new LogBudget((l) => lines.push(l), 3, 60_000, (n) => `${n} more`, () => now);
  for (let i = 1; i <= 10; i++) budget.say(`dead ${i}`);
  assert.deepEqual(lines, ["dead 1", "dead 2", "dead 3"]);
  now = 60_000; // the next window: the held-back count first, then its own lines
  budget.say("dead 11");
  assert.deepEqual(lines, ["dead 1", "dead 2", "dead 3", "7 more", "dead 11"]);
  budget.flush();
  assert.equal(lines.length, 5, "nothing held back, nothing to tell");
});

Deno.test("a log budget tells what it held back when the window ends, with no line after", async () => {
  const lines: string[] = [];
  const budget = new LogBudget((l) => lines.push(l), 1, 30, (n, ms) => `${n} more in ${ms} ms`);
  budget.say("a");
  budget.say("b");
  budget.say("c");
  assert.deepEqual(lines, ["a"]);
  await new Promise((r) => setTimeout(r, 60));
  assert.deepEqual(lines, ["a", "2 more in 30 ms"]);
});
