import type { Principal } from "../../core/envelope.ts";
import type { AdminToken } from "../../store/admin_token.ts";
import type { DeviceDirectory } from "../../store/device_directory.ts";

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
}

/**
 * Checks a CONNECT's credentials: username = device id and password = that device's token; the
 * admin token as password opens an admin session; no credentials only with anonymous connect.
 */
export async function authenticateConnect(
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
  if (options.admin.verify(secret)) return { ok: true, session: { principal: { kind: "admin" }, revoked: false } };
  const device = await options.devices.authenticate(secret);
  if (device === null || device !== username) return { ok: false, returnCode: BAD_USERNAME_OR_PASSWORD };
  return { ok: true, session: { principal: { kind: "device", id: device }, revoked: false } };
}

/**
 * The broker-side client id: namespaced by who connected, so one device can never take over (or
 * resume) another device's session by choosing its client id.
 */
export function sessionClientId(session: Session, clientId: string): string {
  if (session.external) return `x:${clientId}`;
  const p = session.principal;
  return p.kind === "device" ? `d:${p.id}:${clientId}` : p.kind === "admin" ? `a:${clientId}` : `n:${clientId}`;
}
