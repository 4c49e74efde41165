import type { Script } from "./script_api.ts";

/** One script in the manifest. */
export interface ScriptEntry {
  /** Public scripts can be called inline at `POST /<path>` by any device. */
  readonly public: boolean;
  readonly load: () => Promise<{ default: Script }>;
}

/** The static list of scripts: explicit, reviewable, no folder scan at start-up. */
export type ScriptManifest = Readonly<Record<string, ScriptEntry>>;
