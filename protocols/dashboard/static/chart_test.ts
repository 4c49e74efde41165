import assert from "node:assert/strict";
import { linear, linePath, niceTicks } from "./chart.js";

Deno.test("chart ticks are round numbers that cover the data", () => {
  assert.deepEqual(niceTicks(19.5, 24.5), { min: 18, max: 26, step: 2, ticks: [18, 20, 22, 24, 26] });
  assert.deepEqual(niceTicks(1.1, 1.4).ticks, [1.1, 1.2, 1.3, 1.4]);
});

Deno.test("a chart of one value still has a visible range around it", () => {
  const t = niceTicks(21.5, 21.5);
  assert.ok(t.min < 21.5 && t.max > 21.5, JSON.stringify(t));
  assert.ok(niceTicks(0, 0).max > 0);
});

Deno.test("a chart path goes through every point, scaled to the drawing", () => {
  const x = linear(1, 3, 0, 100);
  const y = linear(10, 20, 50, 0);
  assert.equal(linePath([{ x: 1, y: 10 }, { x: 2, y: 20 }, { x: 3, y: 15 }], x, y), "M0.0,50.0L50.0,0.0L100.0,25.0");
  assert.equal(linear(5, 5, 0, 100)(5), 50);
});
