import type { Clock } from "../core/clock.ts";
import { ConflictError, NotFoundError } from "../core/errors.ts";
import { hashSecret, newSecret, sameHash } from "./hash.ts";
import { onKeyChange } from "./key_watch.ts";
import { ReadBatcher } from "./read_batcher.ts";
import { keys } from "./keys.ts";
import { chunked } from "./kv_limits.ts";
import { kvPage } from "./kv_page.ts";

/** Valid tokens remembered at most (the oldest is forgotten first; it is then read again when used). */
const MAX_CACHED_TOKENS = 100_000;

/** A device as stored: never its token, only the token's hash. */
interface DeviceRecord {
  readonly id: string;
  readonly tokenHash: string;
  readonly createdAt: string;
}

/** A device as listed. */
export interface DeviceInfo {
  readonly id: string;
  readonly createdAt: string;
}

/**
 * The device directory: creates devices with random tokens, stores only their hashes,
 * authenticates tokens (cached in memory) and revokes devices at once.
 */
export class DeviceDirectory {
  /** Tokens seen to be valid → their device and hash (a known token needs no hashing, no read). */
  readonly #cache = new Map<string, { readonly id: string; readonly hash: string }>();
  /** The cached tokens of each device (a revocation drops them without scanning the cache). */
  readonly #tokensOf = new Map<string, Set<string>>();
  readonly #revokeListeners = new Set<(id: string) => void>();

  readonly #reads: ReadBatcher;

  /** `reads`: the process's batched reads (a burst of unknown tokens goes ten keys a KV call). */
  constructor(private readonly kv: Deno.Kv, private readonly clock: Clock, reads?: ReadBatcher) {
    this.#reads = reads ?? new ReadBatcher(kv);
  }

  /** Creates a device; the token is in the answer and nowhere else. */
  async create(id: string): Promise<{ id: string; token: string }> {
    const token = newSecret("sl_");
    const tokenHash = hashSecret(token);
    const record: DeviceRecord = { id, tokenHash, createdAt: new Date(this.clock.now()).toISOString() };
    const res = await this.kv.atomic()
      .check({ key: keys.device(id), versionstamp: null })
      .set(keys.device(id), record)
      .set(keys.deviceToken(tokenHash), id)
      .commit();
    if (!res.ok) {
      throw new ConflictError(
        `Device "${id}" already exists (its token was shown only when it was created: for a new one, ` +
          `DELETE /admin/devices/${encodeURIComponent(id)} and create it again)`,
      );
    }
    return { id, token };
  }

  /** Devices by id, at most `limit`, after the id `after`; `next` pages on (null at the end). */
  async list(limit = 100, after?: string): Promise<{ devices: DeviceInfo[]; next: string | null }> {
    const page = await kvPage<DeviceRecord>(this.kv, keys.devices(), limit, after);
    const devices = page.values.map((d) => ({ id: d.id, createdAt: d.createdAt }));
    return { devices, next: page.more ? devices.at(-1)!.id : null };
  }

  /** A device (without its token), or null when there is none (a revoked one is gone). */
  async get(id: string): Promise<DeviceInfo | null> {
    const record = (await this.kv.get<DeviceRecord>(keys.device(id))).value;
    return record ? { id: record.id, createdAt: record.createdAt } : null;
  }

  /** Whether a device exists. */
  async exists(id: string): Promise<boolean> {
    return (await this.kv.get(keys.device(id))).versionstamp !== null;
  }

  /** Revokes a device: its token stops working on every protocol at once. */
  async revoke(id: string): Promise<void> {
    const entry = await this.kv.get<DeviceRecord>(keys.device(id));
    if (!entry.value) throw new NotFoundError(`Device "${id}" does not exist`);
    const res = await this.kv.atomic()
      .check(entry)
      .delete(keys.device(id))
      .delete(keys.deviceToken(entry.value.tokenHash))
      .sum(keys.revocations(), 1n)
      .commit();
    // Only a revoke changes a device's record: another one went first (and a device created since is not this one).
    if (!res.ok) throw new NotFoundError(`Device "${id}" does not exist (revoked meanwhile)`);
    this.#forget(id);
  }

  /** The device a token belongs to, or null. */
  authenticate(token: string): Promise<string | null> {
    if (!token || token.length > 256) return Promise.resolve(null);
    const known = this.known(token);
    return known !== undefined ? Promise.resolve(known) : this.authenticateHash(token, hashSecret(token));
  }

  /** The device of a token already found valid (no hashing, no read), or undefined: authenticate it. */
  known(token: string): string | undefined {
    return this.#cache.get(token)?.id;
  }

  /** The device a token belongs to, or null, given the token's hash (`hashSecret`). */
  async authenticateHash(token: string, hash: string): Promise<string | null> {
    const cached = this.#cache.get(token);
    if (cached !== undefined) return cached.id;
    const entry = await this.#reads.get<string>(keys.deviceToken(hash), true);
    if (!entry.value) return null;
    const device = await this.#reads.get<DeviceRecord>(keys.device(entry.value), true);
    if (!device.value || !sameHash(device.value.tokenHash, hash)) return null;
    if (this.#cache.size >= MAX_CACHED_TOKENS) this.#uncache(this.#cache.keys().next().value!);
    this.#cache.set(token, { id: entry.value, hash });
    this.#tokensOf.set(entry.value, (this.#tokensOf.get(entry.value) ?? new Set()).add(token));
    return entry.value;
  }

  /** Calls `listener` with the id of every device revoked from now on (any instance). */
  onRevoke(listener: (id: string) => void): () => void {
    this.#revokeListeners.add(listener);
    return () => this.#revokeListeners.delete(listener);
  }

  /** Follows revocations made by other instances sharing this KV. */
  watchRevocations(signal: AbortSignal, log?: (line: string) => void): void {
    onKeyChange(this.kv, keys.revocations(), signal, () => this.#recheckCache(), log);
  }

  /** Drops the cached tokens whose device was revoked elsewhere: KV reads of 10 keys, 20 at a time. */
  async #recheckCache(): Promise<void> {
    const cached = [...this.#cache].map(([token, c]) => ({ token, ...c }));
    const batches = chunked(cached);
    for (const group of chunked(batches, 20)) {
      await Promise.all(
        group.map(async (batch) => {
          const entries = await this.kv.getMany(batch.map((c) => keys.deviceToken(c.hash)));
          entries.forEach((e, j) => {
            const c = batch[j]!;
            // Only a token still cached: one forgotten meanwhile was revoked here, its sessions ended then, and
            // its device may have been created again since, with sessions of the new token that must go on.
            if (e.versionstamp === null && this.#cache.get(c.token)?.hash === c.hash) this.#forget(c.id);
          });
        }),
      );
    }
  }

  /** Forgets one cached token (the oldest, when the cache is full). */
  #uncache(token: string): void {
    const id = this.#cache.get(token)?.id;
    this.#cache.delete(token);
    if (id === undefined) return;
    const tokens = this.#tokensOf.get(id)!;
    tokens.delete(token);
    if (tokens.size === 0) this.#tokensOf.delete(id);
  }

  #forget(id: string): void {
    for (const token of this.#tokensOf.get(id) ?? []) this.#cache.delete(token);
    this.#tokensOf.delete(id);
    for (const l of this.#revokeListeners) l(id);
  }
}
