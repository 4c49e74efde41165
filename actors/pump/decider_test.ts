import assert from "node:assert/strict";
import { ValidationError } from "../../core/errors.ts";
import { given } from "../testing.ts";
import { pumpDecider, shownState } from "./decider.ts";
import type { Reading } from "./events.ts";

const reading = (temperature: number, pressure = 1.2, outside?: number): Reading => ({
  temperature,
  pressure,
  coordinates: { lat: 45.5, lon: -73.6 },
  time: "2026-11-25T10:00:00.000Z",
  ...(outside === undefined ? {} : { outsideTemperature: outside }),
});

const recorded = (r: Reading, receivedAt: number) => ({
  type: "ReadingRecorded" as const,
  data: { reading: r, receivedAt },
});

Deno.test("a first reading records it and starts the aggregates", () => {
  given(pumpDecider, "pump-1", [])
    .when({ type: "RecordReading", reading: reading(20, 1.5, 3), receivedAt: 1000 })
    .then([recorded(reading(20, 1.5, 3), 1000)], (s) => {
      assert.equal(s.readings, 1);
      assert.deepEqual(s.temperature, { min: 20, max: 20, avg: 20, sum: 20 });
      assert.equal(s.outsideTemperature, 3);
      assert.equal(s.firstSeen, new Date(1000).toISOString());
      assert.equal(s.version, 1);
    });
});

Deno.test("pump state keeps min, max and average temperature across readings", () => {
  given(pumpDecider, "pump-1", [recorded(reading(20), 1000), recorded(reading(30), 2000)])
    .when({ type: "RecordReading", reading: reading(10), receivedAt: 3000 })
    .then([recorded(reading(10), 3000)], (s) => {
      assert.deepEqual(s.temperature, { min: 10, max: 30, avg: 20, sum: 60 });
      assert.equal(s.readings, 3);
      assert.equal(s.firstSeen, new Date(1000).toISOString());
      assert.equal(s.lastSeen, new Date(3000).toISOString());
    });
});

Deno.test("a reading without outside temperature keeps the last known one", () => {
  given(pumpDecider, "pump-1", [recorded(reading(20, 1, 5), 1000)])
    .when({ type: "RecordReading", reading: reading(21), receivedAt: 2000 })
    .then([recorded(reading(21), 2000)], (s) => assert.equal(s.outsideTemperature, 5));
});

Deno.test("a reading with a non-numeric temperature is refused", () => {
  given(pumpDecider, "pump-1", [])
    .when({ type: "RecordReading", reading: { ...reading(0), temperature: NaN }, receivedAt: 1 })
    .thenThrows(ValidationError);
});

Deno.test("a shown state has no float noise in its sums and averages; the folded state keeps every digit", () => {
  let state = pumpDecider.initialState("p");
  for (const t of [0.1, 0.2]) {
    const [event] = pumpDecider.decide(
      { type: "RecordReading", reading: reading(t, 1.1), receivedAt: 0 },
      state,
    );
    state = pumpDecider.evolve(state, event!);
  }
  assert.equal(state.temperature!.sum, 0.30000000000000004);
  assert.equal(shownState(state).temperature!.sum, 0.3);
  assert.equal(shownState(state).temperature!.avg, 0.15);
  assert.equal(shownState(state).pressure!.sum, 2.2);
});
