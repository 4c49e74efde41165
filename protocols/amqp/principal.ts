import type { Principal } from "../../core/envelope.ts";
import { UnauthorizedError } from "../../core/errors.ts";
import type { AdminToken } from "../../store/admin_token.ts";
import type { DeviceDirectory } from "../../store/device_directory.ts";
import { tokenOwner } from "../../store/token_owner.ts";

/** Resolves a message's token: none is anonymous, the admin token the admin, else a device or a refusal. */
export async function principalOf(
  token: string | undefined,
  admin: AdminToken,
  devices: DeviceDirectory,
): Promise<Principal> {
  if (token === undefined) return { kind: "anonymous" };
  const owner = await tokenOwner(token, admin, devices);
  if (!owner) throw new UnauthorizedError("Unknown or revoked token");
  return owner;
}
