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
 * Fails (one line naming the URL) when the URL is not of one of `schemes` (`localhost:1883` parses as scheme
 * "localhost"), or nothing listens at its host and port: checked before devices are revoked and created again, so a
 * wrong `--url` does not cost them their tokens.
 */
export async function reachable(url: string, schemes: readonly string[]): Promise<void> {
  const u = new URL(url);
  if (!schemes.includes(u.protocol)) {
    const names = schemes.map((s) => `${s}//`);
    throw new Error(
      `--url ${withoutPassword(url)} is not ${names.slice(0, -1).join(", ")} or ${names.at(-1)}: ` +
        `give the scheme, like ${names[0]}127.0.0.1:${PORTS[schemes[0]!]}`,
    );
  }
  try {
    (await Deno.connect(hostAndPort(u))).close();
  } catch (err) {
    throw new Error(`Cannot reach ${u.protocol}//${u.host} (--url): ${err instanceof Error ? err.message : err}`);
  }
}

/**
 * Whether an HTTP server answers at a URL's host and port (an `mqtt://` URL given Sluice's HTTP port): a request
 * line is sent and the first bytes of the answer read. An MQTT broker closes the connection on it, without any
 * login to count as a failed one.
 */
export async function answersHttp(url: string, timeoutMs = 2000): Promise<boolean> {
  const conn = await Deno.connect(hostAndPort(new URL(url))).catch(() => null);
  if (!conn) return false;
  const timer = setTimeout(() => conn.close(), timeoutMs);
  try {
    await conn.write(new TextEncoder().encode("HEAD / HTTP/1.0\r\n\r\n"));
    const buf = new Uint8Array(5);
    let got = 0;
    while (got < buf.length) {
      const n = await conn.read(buf.subarray(got));
      if (n === null) break;
      got += n;
    }
    return new TextDecoder().decode(buf.subarray(0, got)) === "HTTP/";
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
    try {
      conn.close();
    } catch { /* closed by the timer */ }
  }
}

function hostAndPort(u: URL): { hostname: string; port: number } {
  return { hostname: u.hostname.replace(/^\[|\]$/g, ""), port: Number(u.port) || PORTS[u.protocol]! };
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
