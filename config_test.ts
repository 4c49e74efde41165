import assert from "node:assert/strict";
import { loadConfig } from "./config.ts";

Deno.test("settings have the documented defaults", () => {
  const c = loadConfig({});
  assert.equal(c.PORT, 8000);
  assert.equal(c.KV_PATH, "data/sluice.kv");
  assert.equal(c.MQTT_PORT, 1883);
  assert.equal(c.MAX_BODY_BYTES, 49152);
  assert.equal(c.DEDUP_WINDOW, 86_400_000);
  assert.equal(c.RATE_LIMIT, 200);
  assert.equal(c.WEATHER_API_URL, "https://api.open-meteo.com/v1/forecast");
});

Deno.test("settings accept off, durations and rates", () => {
  const c = loadConfig({ MQTT_PORT: "off", RATE_LIMIT: "off", DEDUP_WINDOW: "90s", WEATHER_API_URL: "off" });
  assert.equal(c.MQTT_PORT, null);
  assert.equal(c.RATE_LIMIT, null);
  assert.equal(c.DEDUP_WINDOW, 90_000);
  assert.equal(c.WEATHER_API_URL, null);
  assert.equal(loadConfig({ RATE_LIMIT: "60/m" }).RATE_LIMIT, 1);
});

Deno.test("bad settings are all reported in one error", () => {
  assert.throws(() => loadConfig({ PORT: "eighty", RATE_LIMIT: "fast" }), /PORT[\s\S]*RATE_LIMIT/);
});
