import type { Principal } from "../../core/envelope.ts";
import { UnauthorizedError } from "../../core/errors.ts";
import type { AdminToken } from "../../store/admin_token.ts";
import type { DeviceDirectory } from "../../store/device_directory.ts";

/** Resolves a message's token: none is anonymous, the admin token the admin, else a device or a refusal. */
export async function principalOf(
  token: string | undefined,
  admin: AdminToken,
  devices: DeviceDirectory,
): Promise<Principal> {
  if (token === undefined) return { kind: "anonymous" };
  if (admin.verify(token)) return { kind: "admin" };
  const device = await devices.authenticate(token);
  if (!device) throw new UnauthorizedError("Unknown or revoked token");
  return { kind: "device", id: device };
}
