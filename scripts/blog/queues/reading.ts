import { FUTURE_SKEW_MS, parseIsoTime, PermanentError, type PumpReading } from "@sluice/script";

/** What a water pump can plausibly report; anything else is a broken sensor or a garbled message. */
export const PLAUSIBLE = {
  temperature: { min: -100, max: 200, unit: "°C" },
  pressure: { min: 0, max: 1000, unit: "bar" },
} as const;

/** The earliest time a reading may have been taken. */
export const EARLIEST_TIME = Date.UTC(2000, 0, 1);

/** A decimal number: optional sign, digits with an optional fraction, optional exponent (no hex, no `Infinity`). */
const DECIMAL = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:e[+-]?\d+)?$/i;

/**
 * Turns what a gateway sent into a reading: the CSV string `temperature,pressure,lat:lon,time`
 * (as such, or in `data`), or an object `{temperature, pressure, coordinates, time}` whose values
 * may be strings. Values must be decimal numbers within `PLAUSIBLE`; `time` an ISO 8601 date or
 * date-time (UTC when it has no zone) or, in an object, epoch milliseconds, between 2000 and a day
 * after `receivedAt` (absent: `receivedAt`). Throws a `PermanentError` saying what is wrong.
 */
export function parseReading(input: unknown, receivedAt: string): PumpReading {
  if (isObject(input) && "data" in input && input.data !== undefined) input = input.data;
  if (typeof input === "string") return parseCsv(input, receivedAt);
  if (!isObject(input)) throw new PermanentError(`Reading must be a CSV string or an object, got ${kind(input)}`);
  return {
    temperature: measured(input.temperature, "temperature"),
    pressure: measured(input.pressure, "pressure"),
    coordinates: coordinates(input.coordinates),
    time: time(input.time, receivedAt),
  };
}

function parseCsv(text: string, receivedAt: string): PumpReading {
  const fields = text.trim().split(",").map((f) => f.trim());
  if (fields.length < 3 || fields.length > 4) {
    throw new PermanentError(
      `Reading "${text.slice(0, 80)}" must be "temperature,pressure,lat:lon[,time]" (got ${fields.length} ` +
        `field${fields.length === 1 ? "" : "s"}; time is optional: the time it was received)`,
    );
  }
  return {
    temperature: measured(fields[0], "temperature"),
    pressure: measured(fields[1], "pressure"),
    coordinates: coordinates(fields[2]),
    time: time(fields[3], receivedAt),
  };
}

function number(v: unknown, name: string): number {
  const n = typeof v === "number" ? v : typeof v === "string" && DECIMAL.test(v.trim()) ? Number(v.trim()) : NaN;
  if (!Number.isFinite(n)) {
    throw new PermanentError(`Reading has no valid ${name} (a decimal number): ${show(v)}`);
  }
  return n;
}

function measured(v: unknown, name: keyof typeof PLAUSIBLE): number {
  const n = number(v, name);
  const { min, max, unit } = PLAUSIBLE[name];
  if (n < min || n > max) {
    throw new PermanentError(`Reading's ${name} ${n} is out of range: accepted from ${min} to ${max} ${unit}`);
  }
  return n;
}

function coordinates(v: unknown): { lat: number; lon: number } {
  let lat: unknown, lon: unknown;
  const parts = typeof v === "string" ? v.split(":") : [];
  if (parts.length === 2) [lat, lon] = parts;
  else if (isObject(v)) lat = v.lat ?? v.latitude, lon = v.lon ?? v.lng ?? v.longitude;
  else {throw new PermanentError(
      `Reading has no valid coordinates (expected "lat:lon"): ${show(v)}`,
    );}
  const la = number(lat, "latitude"), lo = number(lon, "longitude");
  if (Math.abs(la) > 90 || Math.abs(lo) > 180) {
    throw new PermanentError(
      `Coordinates ${la}:${lo} are out of range: latitude from -90 to 90, longitude from -180 to 180`,
    );
  }
  return { lat: la, lon: lo };
}

function time(v: unknown, receivedAt: string): string {
  if (v === undefined || v === null || v === "") return receivedAt;
  const ms = typeof v === "number" ? v : typeof v === "string" ? parseIsoTime(v.trim()) : null;
  if (ms === null || !Number.isFinite(ms)) {
    throw new PermanentError(
      `Reading has no valid time: ${show(v)} (expected an ISO 8601 date or date-time such as ` +
        `"2026-11-25T10:00:00Z", UTC without a zone, ${
          typeof v === "string"
            ? "or a number of epoch milliseconds given as a JSON number, not as text or in CSV)"
            : "or a number of epoch milliseconds)"
        }`,
    );
  }
  const latest = Date.parse(receivedAt) + FUTURE_SKEW_MS;
  if (ms < EARLIEST_TIME || ms > latest) {
    throw new PermanentError(
      `Reading's time ${show(v)} is out of range: accepted from 2000-01-01 to a day after the reading was ` +
        `received (${new Date(latest).toISOString()})${
          typeof v === "number" ? "; a number is epoch milliseconds" : ""
        }`,
    );
  }
  return new Date(ms).toISOString();
}

function show(v: unknown): string {
  return (JSON.stringify(v) ?? "missing").slice(0, 80);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function kind(v: unknown): string {
  return v === null ? "null" : Array.isArray(v) ? "an array" : `a ${typeof v}`;
}
