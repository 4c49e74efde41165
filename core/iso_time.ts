/** Times given as text: ISO 8601 only, read the same whatever the server's time zone. */

const ISO_TIME =
  /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?(Z|[+-]\d{2}(?::?\d{2})?)?)?$/i;

/**
 * The time (epoch ms) of an ISO 8601 date (`2026-11-25`: midnight UTC) or date-time
 * (`2026-11-25T10:00:00Z`, `2026-11-25T12:00+02:00`, `2026-11-25T10:00:00.250`). A date-time without
 * a zone is UTC, whatever the server's time zone. Null for anything else, a day that is not in the
 * calendar (`2026-02-31`) or a time past 23:59:59 included.
 *
 * ```ts
 * import { parseIsoTime } from "./iso_time.ts";
 * parseIsoTime("2026-11-25T10:00:00"); // 1795600800000, as "2026-11-25T10:00:00Z"
 * parseIsoTime("2026-02-31"); // null
 * ```
 */
export function parseIsoTime(text: string): number | null {
  if (isCanonicalIsoTime(text)) {
    // The form Sluice stores (`toISOString`'s): Date.parse reads it, but rolls a day out of the calendar over.
    const t = Date.parse(text);
    return Number(text.slice(8, 10)) === new Date(t).getUTCDate() && Number(text.slice(11, 13)) < 24 ? t : null;
  }
  const m = ISO_TIME.exec(text);
  if (!m) return null;
  const [, y, mo, d, h = "0", mi = "0", s = "0", fraction = "", zone = "Z"] = m;
  const [year, month, day, hour, minute, second] = [y, mo, d, h, mi, s].map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  if (hour > 23 || minute > 59 || second > 59) return null;
  const date = new Date(0);
  date.setUTCFullYear(year, month - 1, day);
  // A day or month out of the calendar rolls over (February 31 is March 3): read back, it differs.
  if (date.getUTCFullYear() !== year || date.getUTCMonth() !== month - 1 || date.getUTCDate() !== day) return null;
  const offset = zoneOffsetMinutes(zone.toUpperCase());
  if (offset === null) return null;
  const ms = Number(fraction.padEnd(3, "0").slice(0, 3));
  return date.getTime() + ((hour * 60 + minute - offset) * 60 + second) * 1000 + ms;
}

const CANONICAL = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

/**
 * Whether a time is written as Sluice stores times (`2026-11-25T10:00:00.000Z`, `toISOString`'s
 * form): two such strings compare as their times do, with no parsing.
 */
export function isCanonicalIsoTime(text: string): boolean {
  return text.length === 24 && CANONICAL.test(text);
}

/** `Z` → 0, `+02:00` / `+0200` / `+02` → 120, `-05:30` → -330; null for an hour or minute out of range. */
function zoneOffsetMinutes(zone: string): number | null {
  if (zone === "Z") return 0;
  const sign = zone.startsWith("-") ? -1 : 1;
  const digits = zone.slice(1).replace(":", "");
  const hours = Number(digits.slice(0, 2)), minutes = Number(digits.slice(2) || "0");
  if (hours > 23 || minutes > 59) return null;
  return sign * (hours * 60 + minutes);
}
