import type { ScriptManifest } from "../engine/manifest.ts";

/**
 * Every script Sluice can run. Add a line here for each new script under `scripts/`;
 * `public: true` exposes it at `POST /<path>` for devices.
 */
export const manifest: ScriptManifest = {
  "blog/queues/feed": { public: true, load: () => import("./blog/queues/feed.ts") },
  "blog/queues/processor": { public: false, load: () => import("./blog/queues/processor.ts") },
};
