/**
 * The URLs simulators are pointed at: whether something listens there, and how to show them.
 *
 * @module
 */

/** The ports URL schemes use when the URL names none. */
const PORTS: Record<string, number> = {
  "http:": 80,
  "https:": 443,
  "ws:": 80,
  "wss:": 443,
  "mqtt:": 1883,
  "mqtts:": 8883,
};

/**
 * Fails (one line naming the URL) when nothing listens at a URL's host and port: checked before
 * devices are revoked and created again, so a wrong `--url` does not cost them their tokens.
 */
export async function reachable(url: string): Promise<void> {
  const u = new URL(url);
  const port = Number(u.port) || PORTS[u.protocol];
  if (!port) return;
  try {
    (await Deno.connect({ hostname: u.hostname.replace(/^\[|\]$/g, ""), port })).close();
  } catch (err) {
    throw new Error(`Cannot reach ${u.protocol}//${u.host} (--url): ${err instanceof Error ? err.message : err}`);
  }
}

/** A URL to show (a banner, an error): without its password. */
export function withoutPassword(url: string): string {
  try {
    const u = new URL(url);
    if (!u.password) return url;
    u.password = "";
    return u.toString();
  } catch {
    return url;
  }
}
