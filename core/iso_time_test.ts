import { inTimeZone } from "../tests/helpers/time_zone.ts";
import assert from "node:assert/strict";
import { parseIsoTime } from "./iso_time.ts";

const utc = (text: string) => {
  const ms = parseIsoTime(text);
  return ms === null ? null : new Date(ms).toISOString();
};

Deno.test("ISO dates and date-times are read with their zone; without one they are UTC", () => {
  assert.equal(utc("2026-11-25T10:00:00Z"), "2026-11-25T10:00:00.000Z");
  assert.equal(utc("2026-11-25T10:00:00"), "2026-11-25T10:00:00.000Z");
  assert.equal(utc("2026-11-25 10:00"), "2026-11-25T10:00:00.000Z");
  assert.equal(utc("2026-11-25T12:00:00+02:00"), "2026-11-25T10:00:00.000Z");
  assert.equal(utc("2026-11-25T04:30:00-0530"), "2026-11-25T10:00:00.000Z");
  assert.equal(utc("2026-11-25T11:00+01"), "2026-11-25T10:00:00.000Z");
  assert.equal(utc("2026-11-25T10:00:00.25Z"), "2026-11-25T10:00:00.250Z");
  assert.equal(utc("2026-11-25T10:00:00.123456789z"), "2026-11-25T10:00:00.123Z");
  assert.equal(utc("2026-11-25"), "2026-11-25T00:00:00.000Z");
  assert.equal(utc("2028-02-29T00:00:00Z"), "2028-02-29T00:00:00.000Z");
});

Deno.test("a date-time without a zone does not depend on the server's time zone", async () => {
  await inTimeZone("Asia/Tokyo", () => {
    assert.equal(new Date("2026-11-25T10:00:00").toISOString(), "2026-11-25T01:00:00.000Z", "the zone took effect");
    assert.equal(utc("2026-11-25T10:00:00"), "2026-11-25T10:00:00.000Z");
    assert.equal(utc("2026-11-25"), "2026-11-25T00:00:00.000Z");
  });
});

Deno.test("what is not an ISO 8601 time, or not a day of the calendar, is refused", () => {
  for (
    const text of [
      "",
      "Pump 7",
      "1",
      "1764064800000",
      "yesterday",
      "2026-02-31T00:00:00Z",
      "2026-02-29",
      "2026-13-01",
      "2026-00-10",
      "2026-11-00",
      "2026-11-25T24:00:00Z",
      "2026-11-25T10:60:00Z",
      "2026-11-25T10:00:60Z",
      "2026-11-25T10:00:00+24:00",
      "2026-11-25T10:00:00+02:60",
      "2026-11-25T10",
      "2026-11-25T10:00:00ZZ",
      "26-11-25",
      "+002026-11-25T10:00:00Z",
      "Wed Nov 25 2026 10:00:00 GMT+0000",
      " 2026-11-25T10:00:00Z",
    ]
  ) assert.equal(parseIsoTime(text), null, text);
});
