import { hashSecret, newSecret, sameHash } from "./hash.ts";
import { keys } from "./keys.ts";

/** Checks the admin token; `generated` holds the token when this start created it. */
export interface AdminToken {
  verify(token: string | null | undefined): boolean;
  /** Whether a token's hash (`hashSecret`) is the admin token's. */
  verifyHash(hash: string): boolean;
  /** The token created by this start (to print once), if any. */
  readonly generated?: string;
  /**
   * Takes back the token this start created (it could not serve, so it never printed it): the next
   * start creates and prints one. Does nothing when none was created.
   */
  withdraw(): Promise<void>;
}

/**
 * Uses `configured` when given; otherwise creates a token at the first start, with an
 * atomic check so that of several starting processes exactly one wins, and stores its hash.
 */
export async function loadAdminToken(kv: Deno.Kv, configured?: string): Promise<AdminToken> {
  if (configured) {
    return { ...checker(hashSecret(configured)), withdraw: () => Promise.resolve() };
  }
  const token = newSecret("sla_");
  const hash = hashSecret(token);
  const res = await kv.atomic()
    .check({ key: keys.admin(), versionstamp: null })
    .set(keys.admin(), hash)
    .commit();
  if (!res.ok) {
    return { ...checker((await kv.get<string>(keys.admin())).value ?? hash), withdraw: () => Promise.resolve() };
  }
  return {
    ...checker(hash),
    generated: token,
    withdraw: async () => {
      await kv.atomic().check({ key: keys.admin(), versionstamp: res.versionstamp }).delete(keys.admin()).commit();
    },
  };
}

function checker(hash: string): Pick<AdminToken, "verify" | "verifyHash"> {
  const verifyHash = (h: string) => sameHash(h, hash);
  return { verify: (t) => !!t && verifyHash(hashSecret(t)), verifyHash };
}
