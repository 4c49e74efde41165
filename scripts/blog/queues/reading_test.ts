import assert from "node:assert/strict";
import { PermanentError } from "@sluice/script";
import { parseReading } from "./reading.ts";

const at = "2026-11-25T12:00:00.000Z";

Deno.test("a CSV reading from an MQTT gateway parses into numbers and coordinates", () => {
  assert.deepEqual(parseReading({ data: "21.5,1.25,45.5017:-73.5673,2026-11-25T10:00:00Z" }, at), {
    temperature: 21.5,
    pressure: 1.25,
    coordinates: { lat: 45.5017, lon: -73.5673 },
    time: "2026-11-25T10:00:00.000Z",
  });
});

Deno.test("a JSON reading with string values parses like the CSV one", () => {
  const r = parseReading({
    temperature: "19",
    pressure: "2.5",
    coordinates: "48.85:2.35",
    time: "2026-11-25T09:00:00Z",
  }, at);
  assert.deepEqual([r.temperature, r.pressure, r.coordinates.lat, r.coordinates.lon], [19, 2.5, 48.85, 2.35]);
  assert.equal(parseReading({ data: { temperature: 1, pressure: 2, coordinates: { lat: 1, lon: 2 } } }, at).time, at);
});

Deno.test("garbage readings are refused with a message naming the field", () => {
  const cases: [unknown, RegExp][] = [
    ["abc", /must be "temperature,pressure,lat:lon,time"/],
    ["x,1,1:1,2026-01-01", /temperature/],
    ["1,1,91:0,2026-01-01", /out of range/],
    ["1,1,1:1,yesterday", /time/],
    [{ temperature: 1, pressure: 1 }, /coordinates/],
    [null, /CSV string or an object/],
    [[1, 2], /CSV string or an object/],
  ];
  for (const [input, message] of cases) {
    assert.throws(() => parseReading(input, at), (e) => e instanceof PermanentError && message.test(e.message));
  }
});
