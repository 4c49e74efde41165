import { PermanentError, type PumpReading } from "@sluice/script";

/**
 * Turns what a gateway sent into a reading: the CSV string `temperature,pressure,lat:lon,time`
 * (as such, or in `data`), or an object `{temperature, pressure, coordinates, time}` whose values
 * may be strings. Throws a `PermanentError` saying what is wrong.
 */
export function parseReading(input: unknown, receivedAt: string): PumpReading {
  if (isObject(input) && "data" in input && input.data !== undefined) input = input.data;
  if (typeof input === "string") return parseCsv(input, receivedAt);
  if (!isObject(input)) throw new PermanentError(`Reading must be a CSV string or an object, got ${kind(input)}`);
  return {
    temperature: number(input.temperature, "temperature"),
    pressure: number(input.pressure, "pressure"),
    coordinates: coordinates(input.coordinates),
    time: time(input.time, receivedAt),
  };
}

function parseCsv(text: string, receivedAt: string): PumpReading {
  const fields = text.trim().split(",").map((f) => f.trim());
  if (fields.length < 3 || fields.length > 4) {
    throw new PermanentError(
      `Reading "${text.slice(0, 80)}" must be "temperature,pressure,lat:lon,time" (got ${fields.length} fields)`,
    );
  }
  return {
    temperature: number(fields[0], "temperature"),
    pressure: number(fields[1], "pressure"),
    coordinates: coordinates(fields[2]),
    time: time(fields[3], receivedAt),
  };
}

function number(v: unknown, name: string): number {
  const n = typeof v === "number" ? v : typeof v === "string" && v.trim() !== "" ? Number(v) : NaN;
  if (!Number.isFinite(n)) throw new PermanentError(`Reading has no valid ${name}: ${JSON.stringify(v) ?? "missing"}`);
  return n;
}

function coordinates(v: unknown): { lat: number; lon: number } {
  let lat: unknown, lon: unknown;
  if (typeof v === "string") [lat, lon] = v.split(":");
  else if (isObject(v)) lat = v.lat ?? v.latitude, lon = v.lon ?? v.lng ?? v.longitude;
  else {throw new PermanentError(
      `Reading has no valid coordinates (expected "lat:lon"): ${JSON.stringify(v) ?? "missing"}`,
    );}
  const la = number(lat, "latitude"), lo = number(lon, "longitude");
  if (Math.abs(la) > 90 || Math.abs(lo) > 180) throw new PermanentError(`Coordinates ${la}:${lo} are out of range`);
  return { lat: la, lon: lo };
}

function time(v: unknown, fallback: string): string {
  if (v === undefined || v === null || v === "") return fallback;
  const d = typeof v === "number" ? new Date(v) : typeof v === "string" ? new Date(v) : new Date(NaN);
  if (Number.isNaN(d.getTime())) throw new PermanentError(`Reading has no valid time: ${JSON.stringify(v)}`);
  return d.toISOString();
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function kind(v: unknown): string {
  return v === null ? "null" : Array.isArray(v) ? "an array" : `a ${typeof v}`;
}
