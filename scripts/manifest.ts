import type { ScriptManifest } from "../engine/manifest.ts";

/**
 * Every script Sluice can run. Add a line here for each new script under `scripts/`;
 * `public: true` exposes it at `POST /<path>` for devices.
 */
export const manifest: ScriptManifest = {
  "blog/queues/feed": {
    public: true,
    load: () => import("./blog/queues/feed.ts"),
    body: {
      description: 'A pump reading: the CSV string `"temperature,pressure,lat:lon[,time]"` (as a JSON string, or in ' +
        '`data`), or an object `{temperature, pressure, coordinates: "lat:lon", time?}` whose numbers may be ' +
        "strings. Temperature −100…200 °C, pressure 0…1000 bar; time ISO 8601 or epoch ms (absent: when received).",
      example: { temperature: "21.5", pressure: "1.2", coordinates: "45.50:-73.56", time: "2026-11-25T10:00:00Z" },
    },
  },
  "blog/queues/processor": { public: false, load: () => import("./blog/queues/processor.ts") },
};
