import { ValidationError } from "../../core/errors.ts";
import { isCanonicalIsoTime, parseIsoTime } from "../../core/iso_time.ts";
import type { Reading } from "./events.ts";

/**
 * The largest magnitude a temperature or pressure may have: far past any unit's plausible value, and
 * small enough that the sum of every reading a pump could ever get stays finite.
 */
export const MAX_MAGNITUDE = 1e12;

/** How far after its receipt a reading's time may be (devices' clocks drift). */
export const FUTURE_SKEW_MS = 24 * 60 * 60_000;

/** Whether a temperature or pressure can be folded into a pump's figures. */
export function plausibleValue(v: unknown): v is number {
  return typeof v === "number" && Number.isFinite(v) && Math.abs(v) <= MAX_MAGNITUDE;
}

/**
 * A reading a script asked to record, checked and with its `time` in UTC (`…Z`): temperature and
 * pressure finite numbers within ±`MAX_MAGNITUDE`, coordinates in range, `time` an ISO 8601 date or
 * date-time no later than a day after the message was received (`receivedAt`, ms), `outsideTemperature`
 * absent, null (dropped) or such a number. Throws a `ValidationError` naming what is wrong.
 */
export function checkReading(reading: unknown, receivedAt: number): Reading {
  if (typeof reading !== "object" || reading === null || Array.isArray(reading)) {
    throw new ValidationError(`A reading must be an object, got ${JSON.stringify(reading) ?? "nothing"}`);
  }
  const r = reading as Record<string, unknown>;
  for (const name of ["temperature", "pressure"] as const) {
    if (!plausibleValue(r[name])) {
      throw new ValidationError(
        `Reading has no valid ${name}: ${show(r[name])} (a number within ±${MAX_MAGNITUDE.toExponential()})`,
      );
    }
  }
  const c = r.coordinates as { lat?: unknown; lon?: unknown } | null | undefined;
  const lat = c?.lat, lon = c?.lon;
  if (
    typeof lat !== "number" || typeof lon !== "number" || !(Math.abs(lat) <= 90) || !(Math.abs(lon) <= 180)
  ) {
    throw new ValidationError(
      `Reading has no valid coordinates: ${show(r.coordinates)} (expected {lat: -90…90, lon: -180…180})`,
    );
  }
  const time = typeof r.time === "string" ? parseIsoTime(r.time) : null;
  if (time === null) {
    throw new ValidationError(
      `Reading has no valid time: ${show(r.time)} (expected an ISO 8601 date-time such as "2026-11-25T10:00:00Z")`,
    );
  }
  if (time > receivedAt + FUTURE_SKEW_MS) {
    throw new ValidationError(
      `Reading's time ${show(r.time)} is more than a day after it was received (${new Date(receivedAt).toISOString()})`,
    );
  }
  const { outsideTemperature, ...rest } = r;
  if (outsideTemperature !== undefined && outsideTemperature !== null && !plausibleValue(outsideTemperature)) {
    throw new ValidationError(`Reading has no valid outsideTemperature: ${show(outsideTemperature)}`);
  }
  return {
    ...rest,
    temperature: r.temperature as number,
    pressure: r.pressure as number,
    coordinates: { lat, lon },
    time: isCanonicalIsoTime(r.time as string) ? r.time as string : new Date(time).toISOString(),
    ...(typeof outsideTemperature === "number" ? { outsideTemperature } : {}),
  };
}

function show(v: unknown): string {
  return (JSON.stringify(v) ?? "missing").slice(0, 80);
}
