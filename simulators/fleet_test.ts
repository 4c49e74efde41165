import assert from "node:assert/strict";
import { parseReading } from "../scripts/blog/queues/reading.ts";
import { Fleet, invokePayload, toCsv } from "./fleet.ts";

const AT = Date.UTC(2026, 10, 25, 10, 0, 0);

Deno.test("the same seed gives the same fleet and readings; another seed does not", () => {
  const run = (seed: number) => {
    const fleet = new Fleet({ size: 12, seed });
    return [fleet.pumps, Array.from({ length: 50 }, (_, n) => fleet.next(n % 12, AT + n * 1000))];
  };
  assert.deepEqual(run(7), run(7));
  assert.notDeepEqual(run(7)[1], run(8)[1]);
});

Deno.test("pumps stand at real places with distinct ids and drift within bounds", () => {
  const fleet = new Fleet({ size: 25, seed: 3, prefix: "p" });
  assert.equal(new Set(fleet.pumps.map((p) => p.id)).size, 25);
  assert.equal(fleet.pumps[0]!.id, "p-1");
  assert.equal(new Set(fleet.pumps.map((p) => `${p.lat}:${p.lon}`)).size, 25, "no two pumps in the same spot");
  let last = fleet.next(0, AT);
  for (let n = 1; n < 1000; n++) {
    const r = fleet.next(0, AT + n);
    assert.ok(r.temperature >= 5 && r.temperature <= 80 && r.pressure >= 0.5 && r.pressure <= 3);
    assert.ok(Math.abs(r.temperature - last.temperature) <= 0.31, "small steps");
    last = r;
  }
});

Deno.test("readings are the seed's CSV, which the processor reads", () => {
  const fleet = new Fleet({ size: 1, seed: 1 });
  const r = fleet.next(0, AT);
  const parsed = parseReading(toCsv(r), new Date(AT).toISOString());
  assert.deepEqual(parsed, {
    temperature: r.temperature,
    pressure: r.pressure,
    coordinates: { lat: 45.5017, lon: -73.5673 },
    time: "2026-11-25T10:00:00.000Z",
  });
  assert.deepEqual(JSON.parse(invokePayload(r)), {
    method: "blog/queues/processor",
    params: { data: toCsv(r) },
  });
});
