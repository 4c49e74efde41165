import assert from "node:assert/strict";
import type { ScriptContext } from "@sluice/script";
import { outsideTemperature } from "./weather.ts";

Deno.test('a weather API that cannot be reached is logged with the cause, not only "fetch failed"', async () => {
  const warned: string[] = [];
  const ctx = {
    settings: { weatherApiUrl: "http://weather.invalid/v1/forecast" },
    http: {
      fetch: () =>
        Promise.reject(new TypeError("fetch failed", { cause: new Error("dns error: failed to lookup address") })),
    },
    log: { warn: (line: string) => warned.push(line) },
  } as unknown as ScriptContext;
  assert.equal(await outsideTemperature(ctx, { lat: 1.23, lon: 4.56 }), undefined);
  assert.deepEqual(warned, [
    "No outside temperature for 1.23:4.56: fetch failed (dns error: failed to lookup address)",
  ]);
});
