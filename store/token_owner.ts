import type { Principal } from "../core/envelope.ts";
import type { AdminToken } from "./admin_token.ts";
import type { DeviceDirectory } from "./device_directory.ts";
import { hashSecret } from "./hash.ts";

/** Longest token taken (a device token is 47 characters). */
const MAX_TOKEN_LENGTH = 256;

/** Whose a token is: the admin's, a device's, or nobody's (null). The token is hashed once, unless known. */
export async function tokenOwner(
  token: string,
  admin: AdminToken,
  devices: DeviceDirectory,
): Promise<Exclude<Principal, { kind: "anonymous" }> | null> {
  if (!token || token.length > MAX_TOKEN_LENGTH) return null;
  const known = devices.known(token);
  if (known !== undefined) return { kind: "device", id: known };
  const hash = hashSecret(token);
  if (admin.verifyHash(hash)) return { kind: "admin" };
  const device = await devices.authenticateHash(token, hash);
  return device === null ? null : { kind: "device", id: device };
}
