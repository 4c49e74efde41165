import type { AuthThrottle } from "../../core/auth_throttle.ts";
import type { Principal } from "../../core/envelope.ts";
import type { AdminToken } from "../../store/admin_token.ts";
import type { DeviceDirectory } from "../../store/device_directory.ts";
import { tokenOwner } from "../../store/token_owner.ts";

/**
 * Who is behind a connection. `external` is Sluice's own subscription on an external broker: it
 * cannot see who connected there, so only `<token>/…` routes are accepted from it.
 */
export type Session =
  | { readonly principal: Principal; readonly external?: false; revoked: boolean }
  | { readonly principal: null; readonly external: true; revoked: false };

/** CONNACK return codes of MQTT 3.1.1 that Sluice answers with. */
export const BAD_USERNAME_OR_PASSWORD = 4;
export const NOT_AUTHORIZED = 5;

/** The answer to a CONNECT. */
export type ConnectAnswer =
  | { readonly ok: true; readonly session: Session }
  | { readonly ok: false; readonly returnCode: typeof BAD_USERNAME_OR_PASSWORD | typeof NOT_AUTHORIZED };

export interface ConnectAuthOptions {
  readonly admin: AdminToken;
  readonly devices: DeviceDirectory;
  /** `MQTT_ANONYMOUS_CONNECT`: a CONNECT without credentials opens an anonymous session. */
  readonly anonymousConnect: boolean;
  /** Slows down and then refuses addresses that keep sending wrong credentials. */
  readonly throttle?: AuthThrottle;
}

/**
 * Checks a CONNECT's credentials: username = device id and password = that device's token; the
 * admin token as password opens an admin session; no credentials only with anonymous connect.
 * Wrong credentials from one address are answered ever more slowly (the throttle's delay), and an
 * address past the throttle's limit is refused (not authorized) without its credentials checked.
 */
export async function authenticateConnect(
  options: ConnectAuthOptions,
  username: string | undefined,
  password: Uint8Array | undefined,
  address = "unknown",
): Promise<ConnectAnswer> {
  if (options.throttle?.blocked(address)) return { ok: false, returnCode: NOT_AUTHORIZED };
  const answer = await checkCredentials(options, username, password);
  if (!answer.ok && answer.returnCode === BAD_USERNAME_OR_PASSWORD && options.throttle) {
    const delay = options.throttle.failed(address);
    if (delay > 0) await new Promise((r) => setTimeout(r, delay));
  }
  return answer;
}

async function checkCredentials(
  options: ConnectAuthOptions,
  username: string | undefined,
  password: Uint8Array | undefined,
): Promise<ConnectAnswer> {
  if (!username && !password) {
    return options.anonymousConnect
      ? { ok: true, session: { principal: { kind: "anonymous" }, revoked: false } }
      : { ok: false, returnCode: NOT_AUTHORIZED };
  }
  const secret = password ? new TextDecoder().decode(password) : "";
  if (!secret) return { ok: false, returnCode: BAD_USERNAME_OR_PASSWORD };
  const owner = await tokenOwner(secret, options.admin, options.devices);
  if (!owner || (owner.kind === "device" && owner.id !== username)) {
    return { ok: false, returnCode: BAD_USERNAME_OR_PASSWORD };
  }
  return { ok: true, session: { principal: owner, revoked: false } };
}

/**
 * Why a CONNECT's client id cannot be taken, or null. The packet parser decodes strings leniently
 * (ill-formed UTF-8 arrives as U+FFFD), and MQTT 3.1.1 says a server that receives ill-formed
 * UTF-8 or U+0000 in a string must close the connection [MQTT-1.5.3-1], [MQTT-1.5.3-2].
 */
export function clientIdProblem(clientId: string): string | null {
  return stringProblem("Client id", clientId);
}

/**
 * Why an MQTT string (`what`: a client id, a topic, a filter) must close the connection, or null: ill-formed UTF-8
 * (read as U+FFFD) or U+0000 [MQTT-1.5.3-1], [MQTT-1.5.3-2]. The text itself is not quoted: a topic may hold a token.
 */
export function stringProblem(what: string, text: string): string | null {
  if (text.includes("\uFFFD")) return `${what} is not well-formed UTF-8`;
  if (text.includes("\u0000")) return `${what} contains U+0000`;
  return null;
}

/**
 * The broker-side client id: namespaced by who connected, so one device can never take over (or
 * resume) another device's session by choosing its client id. The device id ends at a `/`, which
 * device ids cannot hold: with `:` (which they can), device `site` with client id `p1:gw` and device
 * `site:p1` with client id `gw` were one session.
 */
export function sessionClientId(session: Session, clientId: string): string {
  if (session.external) return `x:${clientId}`;
  const p = session.principal;
  return p.kind === "device"
    ? `${deviceSessions(p.id)}${clientId}`
    : p.kind === "admin"
    ? `a:${clientId}`
    : `n:${clientId}`;
}

/** How the broker's client ids of a device's sessions begin. */
export function deviceSessions(deviceId: string): string {
  return `d:${deviceId}/`;
}

/** Who holds a session, from its broker-side client id (`sessionClientId`); null for Sluice's own on an external broker. */
export function sessionPrincipal(clientId: string): Principal | null {
  const device = /^d:([^/]+)\//.exec(clientId);
  if (device) return { kind: "device", id: device[1]! };
  if (clientId.startsWith("a:")) return { kind: "admin" };
  if (clientId.startsWith("n:")) return { kind: "anonymous" };
  return null;
}
