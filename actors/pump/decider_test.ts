import assert from "node:assert/strict";
import { ValidationError } from "../../core/errors.ts";
import { given } from "../testing.ts";
import { pumpDecider, type PumpState, shownState } from "./decider.ts";
import type { PumpEvent, Reading } from "./events.ts";

/** Receipt times: `t0 + n` ms, just after the readings' own times. */
const t0 = Date.parse("2026-11-25T10:00:01Z");
const here = { lat: 45.5, lon: -73.6 };

const reading = (
  temperature: number,
  pressure = 1.2,
  outside?: number,
  time = "2026-11-25T10:00:00.000Z",
  coordinates = here,
): Reading => ({
  temperature,
  pressure,
  coordinates,
  time,
  ...(outside === undefined ? {} : { outsideTemperature: outside }),
});

const recorded = (r: Reading, receivedAt: number) => ({
  type: "ReadingRecorded" as const,
  data: { reading: r, receivedAt },
});

const fold = (events: readonly (PumpEvent & { seq?: number; at?: number })[]): PumpState =>
  events.reduce(pumpDecider.evolve, pumpDecider.initialState("p"));

Deno.test("a first reading records it and starts the aggregates", () => {
  given(pumpDecider, "pump-1", [])
    .when({ type: "RecordReading", reading: reading(20, 1.5, 3), receivedAt: t0 })
    .then([recorded(reading(20, 1.5, 3), t0)], (s) => {
      assert.equal(s.readings, 1);
      assert.deepEqual(s.temperature, { min: 20, max: 20, avg: 20, sum: 20 });
      assert.equal(s.outsideTemperature, 3);
      assert.equal(s.outsideTemperatureAt, "2026-11-25T10:00:00.000Z");
      assert.equal(s.firstSeen, new Date(t0).toISOString());
      assert.equal(s.version, 1);
    });
});

Deno.test("pump state keeps min, max and average temperature across readings", () => {
  given(pumpDecider, "pump-1", [recorded(reading(20), t0), recorded(reading(30), t0 + 1000)])
    .when({ type: "RecordReading", reading: reading(10), receivedAt: t0 + 2000 })
    .then([recorded(reading(10), t0 + 2000)], (s) => {
      assert.deepEqual(s.temperature, { min: 10, max: 30, avg: 20, sum: 60 });
      assert.equal(s.readings, 3);
      assert.equal(s.firstSeen, new Date(t0).toISOString());
      assert.equal(s.lastSeen, new Date(t0 + 2000).toISOString());
    });
});

Deno.test("a reading without outside temperature at the same place keeps the last one, with its time", () => {
  given(pumpDecider, "pump-1", [recorded(reading(20, 1, 5), t0)])
    .when({ type: "RecordReading", reading: reading(21, 1, undefined, "2026-11-25T10:00:01.000Z"), receivedAt: t0 })
    .then([recorded(reading(21, 1, undefined, "2026-11-25T10:00:01.000Z"), t0)], (s) => {
      assert.equal(s.outsideTemperature, 5);
      assert.equal(s.outsideTemperatureAt, "2026-11-25T10:00:00.000Z");
    });
});

Deno.test("a reading from new coordinates without outside temperature clears the old place's", () => {
  const moved = reading(21, 1, undefined, "2026-11-25T10:00:01.000Z", { lat: 48.85, lon: 2.35 });
  const s = fold([recorded(reading(20, 1, 5), t0), recorded(moved, t0 + 1)]);
  assert.equal(s.outsideTemperature, null);
  assert.equal(s.outsideTemperatureAt, null);
  assert.deepEqual(s.lastReading, moved);
});

Deno.test("an out-of-order reading is counted but does not replace the latest taken as lastReading", () => {
  const latest = reading(20, 1, 5, "2026-11-25T10:05:00.000Z");
  const late = reading(30, 2, 9, "2026-11-25T10:00:00.000Z", { lat: 1, lon: 1 });
  const s = fold([recorded(latest, t0), recorded(late, t0 + 5000)]);
  assert.deepEqual(s.lastReading, latest);
  assert.equal(s.outsideTemperature, 5, "the outside temperature of the latest reading's place");
  assert.equal(s.readings, 2);
  assert.deepEqual(s.temperature, { min: 20, max: 30, avg: 25, sum: 50 });
  assert.equal(s.lastSeen, new Date(t0 + 5000).toISOString(), "lastSeen is the latest receipt");
  const same = reading(21, 1, undefined, "2026-11-25T10:05:00.000Z");
  assert.deepEqual(fold([recorded(latest, t0), recorded(same, t0 + 1)]).lastReading, same, "a tie: recorded last");
});

Deno.test("firstSeen and lastSeen are the earliest and latest receipt, whatever the processing order", () => {
  const s = fold([recorded(reading(1), t0 + 5000), recorded(reading(2), t0)]); // a dead letter retried late
  assert.equal(s.firstSeen, new Date(t0).toISOString());
  assert.equal(s.lastSeen, new Date(t0 + 5000).toISOString());
});

Deno.test("updatedAt is the commit time of the last event", () => {
  const s = fold([
    { ...recorded(reading(1), t0), seq: 1, at: t0 + 10 },
    { ...recorded(reading(2), t0), seq: 2, at: t0 + 20 },
  ]);
  assert.equal(s.updatedAt, new Date(t0 + 20).toISOString());
  assert.equal(pumpDecider.initialState("p").updatedAt, null);
});

Deno.test("updatedAt never goes back when a later event was committed on a clock set back", () => {
  const s = fold([
    { ...recorded(reading(1), t0), seq: 1, at: t0 + 10 },
    { ...recorded(reading(2), t0), seq: 2, at: t0 + 10 - 3 * 3_600_000 },
  ]);
  assert.equal(s.version, 2);
  assert.equal(s.updatedAt, new Date(t0 + 10).toISOString());
});

Deno.test("readings a pump could not have sent are refused: non-finite or huge values, bad places and times", () => {
  const refused = (r: unknown, message: RegExp) =>
    assert.throws(
      () => pumpDecider.decide({ type: "RecordReading", reading: r as Reading, receivedAt: t0 }, fold([])),
      (e) => e instanceof ValidationError && message.test(e.message),
      JSON.stringify(r),
    );
  refused({ ...reading(0), temperature: NaN }, /no valid temperature/);
  refused({ ...reading(0), temperature: null }, /no valid temperature: null/);
  refused(reading(1.7e308), /no valid temperature: 1\.7e\+308 \(a number within ±1e\+12\)/);
  refused(reading(1, -1e13), /no valid pressure/);
  refused({ ...reading(1), pressure: "1" }, /no valid pressure: "1"/);
  refused(reading(1, 1, undefined, undefined, { lat: 91, lon: 0 }), /no valid coordinates/);
  refused({ ...reading(1), coordinates: "1:1" }, /no valid coordinates: "1:1"/);
  refused({ ...reading(1), time: "Pump 7" }, /no valid time: "Pump 7"/);
  refused({ ...reading(1), time: 1795600800000 }, /no valid time/);
  refused({ ...reading(1), time: "2026-02-31T00:00:00Z" }, /no valid time/);
  refused({ ...reading(1), time: "3000-01-01T00:00:00Z" }, /more than a day after it was received/);
  refused({ ...reading(1), outsideTemperature: "cold" }, /no valid outsideTemperature/);
  refused(null, /must be an object, got null/);
  refused([1], /must be an object/);
});

Deno.test("a recorded reading's time is kept in UTC; a time without a zone is UTC", () => {
  const [event] = pumpDecider.decide(
    { type: "RecordReading", reading: { ...reading(1), time: "2026-11-25T10:00:00" }, receivedAt: t0 },
    fold([]),
  );
  assert.equal(event!.data.reading.time, "2026-11-25T10:00:00.000Z");
  const [plus] = pumpDecider.decide(
    { type: "RecordReading", reading: { ...reading(1), time: "2026-11-25T12:00:00+02:00" }, receivedAt: t0 },
    fold([]),
  );
  assert.equal(plus!.data.reading.time, "2026-11-25T10:00:00.000Z");
});

Deno.test("huge readings logged before they were refused never make the figures non-finite", () => {
  const s = fold([recorded(reading(1.7e308), t0), recorded(reading(1.7e308), t0 + 1), recorded(reading(20), t0 + 2)]);
  assert.deepEqual(s.temperature, { min: 20, max: 20, avg: 20, sum: 20 });
  assert.equal(s.readings, 1);
  assert.equal(s.version, 3, "the events are still applied");
  assert.ok(Number.isFinite(JSON.parse(JSON.stringify(shownState(s))).temperature.sum));
});

Deno.test("a shown state has no float noise in its sums and averages; the folded state keeps every digit", () => {
  let state = pumpDecider.initialState("p");
  for (const t of [0.1, 0.2]) {
    const [event] = pumpDecider.decide(
      { type: "RecordReading", reading: reading(t, 1.1), receivedAt: t0 },
      state,
    );
    state = pumpDecider.evolve(state, event!);
  }
  assert.equal(state.temperature!.sum, 0.30000000000000004);
  assert.equal(shownState(state).temperature!.sum, 0.3);
  assert.equal(shownState(state).temperature!.avg, 0.15);
  assert.equal(shownState(state).pressure!.sum, 2.2);
});

Deno.test("entries of older logs with odd times or no coordinates still fold, in arrival order", () => {
  const odd = { ...reading(2), time: "-029719-01-01T00:00:00.000Z" };
  const bare = { temperature: 3, pressure: 1, time: 5 } as unknown as Reading;
  const s = fold([recorded(reading(1, 1, 5), t0), recorded(odd, t0 + 1), recorded(bare, t0 + 2)]);
  assert.equal(s.readings, 3);
  assert.deepEqual(s.lastReading, bare);
  assert.equal(s.outsideTemperature, null);
});

Deno.test("a pump state saved by the previous version (shape 1) is brought up to date, not replayed", () => {
  const reading = { temperature: 20, pressure: 1, coordinates: { lat: 1, lon: 2 }, time: "2026-11-25T10:00:00.000Z" };
  const old = {
    id: "p",
    version: 7,
    readings: 7,
    lastReading: { ...reading, outsideTemperature: 4 },
    temperature: { min: 20, max: 20, avg: 20, sum: 140 },
    pressure: { min: 1, max: 1, avg: 1, sum: 7 },
    outsideTemperature: 4,
    firstSeen: "2026-11-25T09:00:00.000Z",
    lastSeen: "2026-11-25T10:00:01.000Z",
  };
  const at = Date.parse("2026-11-25T10:00:02Z");
  const up = pumpDecider.upcast!(old, 1, at)!;
  assert.equal(up.updatedAt, "2026-11-25T10:00:02.000Z");
  assert.deepEqual([up.outsideTemperature, up.outsideTemperatureAt], [4, reading.time]);
  assert.deepEqual([up.version, up.readings, up.temperature, up.lastSeen], [7, 7, old.temperature, old.lastSeen]);
  // Its outside temperature came from an earlier reading, maybe at another place: not kept.
  const without = pumpDecider.upcast!({ ...old, lastReading: reading }, 1, at)!;
  assert.deepEqual([without.outsideTemperature, without.outsideTemperatureAt], [null, null]);
  // Figures that overflowed are rebuilt by a replay, which leaves such readings out.
  assert.equal(
    pumpDecider.upcast!({ ...old, temperature: { min: 1, max: 2, avg: Infinity, sum: Infinity } }, 1, at),
    null,
  );
  assert.equal(pumpDecider.upcast!(old, 4, at), null);
  // Shape 2 (before `movedAt`): no move known, the rest as it was.
  const two = { ...up, movedAt: undefined };
  assert.deepEqual(pumpDecider.upcast!(two, 2, at), { ...up, movedAt: null });
});

Deno.test("the state shown leaves out what only the fold needs (movedAt)", () => {
  const s = fold([
    recorded(reading(20, 1, 3), t0),
    recorded(reading(21, 1, undefined, "2026-11-25T10:05:00.000Z", { lat: 1, lon: 2 }), t0 + 1),
  ]);
  assert.equal(s.movedAt, "2026-11-25T10:00:00.000Z");
  assert.ok(!("movedAt" in shownState(s)));
});

Deno.test("the outside temperature is the latest taken at the pump's place that had one, whatever the arrival order", () => {
  const at = (h: number) => `2026-11-25T${String(h).padStart(2, "0")}:00:00.000Z`;
  const r1 = reading(20, 1, 50.1, at(10));
  const r2 = reading(21, 1, undefined, at(12)); // the weather API was down
  const r3 = reading(22, 1, 52.1, at(11));
  for (const order of [[r1, r2, r3], [r1, r3, r2], [r3, r1, r2], [r2, r3, r1]]) {
    const s = fold(order.map((r, i) => recorded(r, t0 + i)));
    assert.deepEqual([s.outsideTemperature, s.outsideTemperatureAt], [52.1, at(11)], JSON.stringify(order));
    assert.deepEqual(s.lastReading, r2);
  }
  // Moved to another place by the latest reading, without a value: a late reading there brings one.
  const there = { lat: 48.85, lon: 2.35 };
  const moved = fold([
    recorded(r1, t0),
    recorded(reading(21, 1, undefined, at(12), there), t0 + 1),
    recorded(reading(22, 1, 7.5, at(11), there), t0 + 2),
  ]);
  assert.deepEqual([moved.outsideTemperature, moved.outsideTemperatureAt], [7.5, at(11)]);
  // A late reading from another place than the latest's brings nothing, and says the pump was away after the value
  // shown was taken: in time order that place's reading came between, and the latest, back here, had none.
  const elsewhere = fold([recorded(r1, t0), recorded(r2, t0 + 1), recorded(reading(22, 1, 9, at(11), there), t0 + 2)]);
  assert.deepEqual([elsewhere.outsideTemperature, elsewhere.outsideTemperatureAt], [null, null]);
  // A late value from before the pump went away (and came back) is not taken either.
  const back = fold([
    recorded(reading(20, 1, undefined, at(13)), t0),
    recorded(reading(21, 1, undefined, at(12), there), t0 + 1),
    recorded(reading(22, 1, 4.5, at(11)), t0 + 2),
  ]);
  assert.deepEqual([back.outsideTemperature, back.outsideTemperatureAt], [null, null]);
});

/** Every order of `items`. */
function permutations<T>(items: readonly T[]): T[][] {
  if (items.length <= 1) return [[...items]];
  return items.flatMap((x, i) => permutations([...items.slice(0, i), ...items.slice(i + 1)]).map((p) => [x, ...p]));
}

Deno.test("the state a pump's readings fold to is the same in every arrival order (readings at distinct times)", () => {
  let seed = 7;
  const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const places = [here, { lat: 48.85, lon: 2.35 }, { lat: 1, lon: 2 }];
  for (let trial = 0; trial < 400; trial++) {
    const n = 2 + Math.floor(random() * 3);
    const minutes = [...new Set(Array.from({ length: n * 3 }, () => Math.floor(random() * 50)))].slice(0, n);
    const readings = minutes.map((m, i) =>
      reading(
        20 + i,
        1,
        random() < 0.5 ? Math.round(random() * 100) / 10 : undefined,
        `2026-11-25T10:${String(m).padStart(2, "0")}:00.000Z`,
        places[Math.floor(random() * 2.4)]!,
      )
    );
    const shown = (order: readonly Reading[]) => {
      const s = shownState(fold(order.map((r, i) => recorded(r, t0 + i))));
      return JSON.stringify([s.lastReading, s.outsideTemperature, s.outsideTemperatureAt, s.readings]);
    };
    const expected = shown([...readings].sort((a, b) => (a.time < b.time ? -1 : 1)));
    for (const order of permutations(readings)) {
      assert.equal(shown(order), expected, `${JSON.stringify(readings)} in the order ${JSON.stringify(order)}`);
    }
  }
});
