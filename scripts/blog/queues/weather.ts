import type { ScriptContext } from "@sluice/script";

const HIT_TTL_MS = 10 * 60_000;
const MISS_TTL_MS = 60_000;
const TIMEOUT_MS = 2000;
const cache = new Map<string, { value: number | null; until: number }>();

/**
 * The outside temperature at a place, from the weather API (`WEATHER_API_URL`, Open-Meteo's
 * forecast API by default): cached per coordinate for 10 minutes, failures for 60 s, 2 s timeout.
 * Undefined when the API is off or failing: the reading is kept without it.
 */
export async function outsideTemperature(
  ctx: ScriptContext,
  at: { lat: number; lon: number },
  now = Date.now(),
): Promise<number | undefined> {
  const base = ctx.settings.weatherApiUrl;
  if (!base) return undefined;
  const key = `${at.lat.toFixed(2)}:${at.lon.toFixed(2)}`;
  const hit = cache.get(key);
  if (hit && hit.until > now) return hit.value ?? undefined;
  let value: number | null = null;
  try {
    const url = new URL(base);
    url.searchParams.set("latitude", String(at.lat));
    url.searchParams.set("longitude", String(at.lon));
    url.searchParams.set("current", "temperature_2m");
    const res = await ctx.http.fetch(url, { timeoutMs: TIMEOUT_MS });
    if (!res.ok) throw new Error(`weather API answered ${res.status}`);
    const body = await res.json();
    const t = body?.current?.temperature_2m;
    if (typeof t !== "number" || !Number.isFinite(t)) {
      throw new Error("weather API answer has no current.temperature_2m");
    }
    value = t;
  } catch (err) {
    ctx.log.warn(`No outside temperature for ${key}: ${why(err)}`);
  }
  cache.set(key, { value, until: now + (value === null ? MISS_TTL_MS : HIT_TTL_MS) });
  if (cache.size > 50_000) cache.delete(cache.keys().next().value!);
  return value ?? undefined;
}

/** An error's message and its cause's ("fetch failed" says nothing; its cause names the DNS or connection error). */
function why(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause = err.cause instanceof Error ? err.cause.message : err.cause === undefined ? "" : String(err.cause);
  return cause && !err.message.includes(cause) ? `${err.message} (${cause})` : err.message;
}
