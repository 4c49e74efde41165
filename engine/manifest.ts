import type { Script } from "./script_api.ts";

/** One script in the manifest. */
export interface ScriptEntry {
  /** Public scripts can be called inline at `POST /<path>` by any device. */
  readonly public: boolean;
  readonly load: () => Promise<{ default: Script }>;
  /** What a public script's page at `/docs` says of the body it takes, with an example. */
  readonly body?: { readonly description: string; readonly example?: unknown };
}

/** The static list of scripts: explicit, reviewable, no folder scan at start-up. */
export type ScriptManifest = Readonly<Record<string, ScriptEntry>>;

/** The manifest's entry at `path`: only its own keys, never what every object has (`constructor`, `toString`). */
export function scriptAt(manifest: ScriptManifest, path: string): ScriptEntry | undefined {
  return Object.hasOwn(manifest, path) ? manifest[path] : undefined;
}
