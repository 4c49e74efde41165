import type { Principal } from "../../core/envelope.ts";
import { ForbiddenError, UnauthorizedError } from "../../core/errors.ts";
import type { AdminToken } from "../../store/admin_token.ts";
import type { DeviceDirectory } from "../../store/device_directory.ts";
import { tokenOwner } from "../../store/token_owner.ts";

/** Who may call a route. */
export type Access =
  | "admin"
  | "device"
  /** Admin or device; the handler limits a device to its own data. */
  | "reader"
  /** Anyone; a token, if given, must be valid. */
  | "open"
  /** Anyone; a token, if given, is not even looked at (health probes that send a stale one). */
  | "anyone";

/** The token of a request: `Authorization: Bearer …`, or `?token=` where allowed. */
export function tokenOf(req: Request, allowQuery: boolean): string | null {
  const header = req.headers.get("authorization");
  if (header) {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!m) throw new UnauthorizedError('Authorization header must be "Bearer <token>"');
    return m[1]!;
  }
  return allowQuery ? new URL(req.url).searchParams.get("token") : null;
}

/** Resolves a token to a principal: the admin, a device, or anonymous for no token. */
export async function principalOf(
  token: string | null,
  admin: AdminToken,
  devices: DeviceDirectory,
): Promise<Principal> {
  if (token === null || token === "") return { kind: "anonymous" };
  const owner = await tokenOwner(token, admin, devices);
  if (owner) return owner;
  throw new UnauthorizedError("Unknown or revoked token");
}

/** Throws unless the principal may call a route with this access. */
export function requireAccess(principal: Principal, access: Access): void {
  if (access === "open" || access === "anyone") return;
  if (principal.kind === "anonymous") {
    throw new UnauthorizedError("A token is required (Authorization: Bearer <token>)");
  }
  if (access === "admin" && principal.kind !== "admin") throw new ForbiddenError("This route needs the admin token");
  if (access === "device" && principal.kind !== "device") throw new ForbiddenError("This route needs a device token");
}

/**
 * Throws unless the principal is the admin or the device `owner`. The refusal says nothing of
 * whether the thing exists (a device cannot probe for other devices' pumps or tasks).
 */
export function requireOwner(principal: Principal, owner: string | null, what: string): void {
  if (principal.kind === "admin") return;
  if (principal.kind === "device" && principal.id === owner) return;
  throw notOwn(what);
}

/** The refusal of a thing that is not the device's, or does not exist (the two are not told apart). */
export function notOwn(what: string): ForbiddenError {
  return new ForbiddenError(
    `This ${what} is not this device's: a device token reads only its own ${what}s (the admin token reads all)`,
  );
}
