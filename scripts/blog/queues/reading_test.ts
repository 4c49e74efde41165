import { inTimeZone } from "../../../tests/helpers/time_zone.ts";
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
    ["abc", /must be "temperature,pressure,lat:lon\[,time\]" \(got 1 field; time is optional/],
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

const refused = (input: unknown, message: RegExp, receivedAt = at) =>
  assert.throws(
    () => parseReading(input, receivedAt),
    (e) => e instanceof PermanentError && message.test(e.message),
    JSON.stringify(input),
  );

Deno.test("implausible temperatures and pressures are refused, naming the field and the accepted range", () => {
  refused("1.7e308,1,1:1,2026-11-25T10:00:00Z", /temperature 1\.7e\+308 is out of range: accepted from -100 to 200 °C/);
  refused("201,1,1:1,2026-11-25T10:00:00Z", /temperature 201 is out of range/);
  refused("-101,1,1:1,2026-11-25T10:00:00Z", /temperature -101 is out of range/);
  refused("20,-1,1:1,2026-11-25T10:00:00Z", /pressure -1 is out of range: accepted from 0 to 1000 bar/);
  refused({ temperature: 20, pressure: 1e6, coordinates: "1:1" }, /pressure 1000000 is out of range/);
  const edge = parseReading("-100,0,1:1,2026-11-25T10:00:00Z", at);
  assert.deepEqual([edge.temperature, edge.pressure], [-100, 0]);
  assert.equal(parseReading("200,1000,1:1,2026-11-25T10:00:00Z", at).pressure, 1000);
});

Deno.test("only decimal numbers are read as numbers: no hex, binary, octal or Infinity", () => {
  for (const v of ["0x1A", "0b11", "0o7", "Infinity", "1_000", "1.2.3", "--1", "1e", "e1", "."]) {
    refused({ temperature: v, pressure: 1, coordinates: "1:1" }, /no valid temperature \(a decimal number\)/);
  }
  const ok = (v: string) => parseReading({ temperature: v, pressure: "1", coordinates: "1:1" }, at).temperature;
  assert.deepEqual(["1e1", "+5", "-2.5", ".5", "5.", " 7 ", "1.5E1"].map(ok), [10, 5, -2.5, 0.5, 5, 7, 15]);
});

Deno.test("coordinates have exactly two parts", () => {
  refused("20,1,1:1:5,2026-11-25T10:00:00Z", /no valid coordinates \(expected "lat:lon"\): "1:1:5"/);
  refused({ temperature: 20, pressure: 1, coordinates: "45" }, /no valid coordinates/);
  refused({ temperature: 20, pressure: 1, coordinates: "0x1:2" }, /no valid latitude/);
});

Deno.test("a time without a zone is UTC, whatever the server's time zone", async () => {
  await inTimeZone("Asia/Tokyo", () => {
    assert.equal(parseReading("20,1,1:1,2026-11-25T10:00:00", at).time, "2026-11-25T10:00:00.000Z");
    assert.equal(parseReading("20,1,1:1,2026-11-25", at).time, "2026-11-25T00:00:00.000Z");
  });
});

Deno.test("times are ISO 8601 or epoch milliseconds, between 2000 and a day after receipt", () => {
  for (const t of ["Pump 7", "1", "2026-02-31T00:00:00Z", "25/11/2026", "1764064800000"]) {
    refused(`20,1,1:1,${t}`, /no valid time: .*ISO 8601/);
  }
  refused({ temperature: 20, pressure: 1, coordinates: "1:1", time: -1e15 }, /time -1000000000000000 is out of range/);
  refused({ temperature: 20, pressure: 1, coordinates: "1:1", time: 1764064800 }, /epoch milliseconds/);
  // Digits in text (CSV has no other kind) are no time: the message says a number is taken only as JSON's.
  refused(
    { temperature: 20, pressure: 1, coordinates: "1:1", time: "1764064800000" },
    /epoch milliseconds given as a JSON number, not as text or in CSV\)$/,
  );
  refused("20,1,1:1,3000-01-01T00:00:00Z", /out of range: accepted from 2000-01-01 to a day after .*2026-11-26T12:00/);
  refused("20,1,1:1,1999-12-31T23:59:59Z", /out of range/);
  const fromNumber = parseReading({ temperature: 20, pressure: 1, coordinates: "1:1", time: 1795600800000 }, at);
  assert.equal(fromNumber.time, "2026-11-25T10:00:00.000Z");
  assert.equal(parseReading("20,1,1:1,2026-11-26T11:00:00Z", at).time, "2026-11-26T11:00:00.000Z", "within the skew");
  assert.equal(parseReading("20,1,1:1,2026-11-25T12:00:00+02:00", at).time, "2026-11-25T10:00:00.000Z");
});
