import assert from "node:assert/strict";
import { Fleet, processorInvoke, toCsv } from "./fleet.ts";

Deno.test("the same seed gives the same fleet and the same readings", () => {
  const a = new Fleet({ devices: 3, prefix: "p", seed: 7 });
  const b = new Fleet({ devices: 3, prefix: "p", seed: 7 });
  const t = new Date("2026-11-25T10:00:00Z");
  assert.deepEqual(a.pumps.map((p) => a.next(p, t)), b.pumps.map((p) => b.next(p, t)));
  assert.deepEqual(a.pumps.map((p) => p.id), ["p-0", "p-1", "p-2"]);
});

Deno.test("readings drift slowly and stay plausible", () => {
  const fleet = new Fleet({ devices: 1, prefix: "p" });
  const pump = fleet.pumps[0]!;
  let last = fleet.next(pump, new Date());
  for (let i = 0; i < 1000; i++) {
    const r = fleet.next(pump, new Date());
    assert.ok(Math.abs(r.temperature - last.temperature) <= 0.35);
    assert.ok(r.pressure >= 0.5 && r.pressure <= 3);
    last = r;
  }
  assert.equal(pump.sent, 1001);
});

Deno.test("a reading becomes the gateways' CSV and the processor's invoke body", () => {
  const r = { temperature: 21.5, pressure: 1.2, coordinates: "45.5:-73.56", time: "2026-11-25T10:00:00.000Z" };
  assert.equal(toCsv(r), "21.5,1.2,45.5:-73.56,2026-11-25T10:00:00.000Z");
  assert.deepEqual(processorInvoke(r), {
    method: "blog/queues/processor",
    params: { data: "21.5,1.2,45.5:-73.56,2026-11-25T10:00:00.000Z" },
  });
});
