import type { Clock } from "../core/clock.ts";
import { describeError } from "../core/errors.ts";
import { keys } from "./keys.ts";

/** Leases renewed in one commit (a check and a set each, within KV's 100 checks a commit). */
const RENEW_PER_COMMIT = 50;

/** Who holds a partition: written on takeover only, so its version changes only with the owner. */
interface Holder {
  readonly owner: string;
  readonly since: number;
}

/** A lease this instance holds. */
export interface Lease {
  readonly name: string;
  /** Put this in every commit made under the lease: it fails once another instance took over. */
  readonly check: Deno.AtomicCheck;
  /** Until when this instance may act on it by its own clock (expiry minus a safety margin). */
  validUntil: number;
}

export interface LeaseOptions {
  readonly kv: Deno.Kv;
  readonly owner: string;
  readonly clock: Clock;
  /** How long a lease lasts without renewal. */
  readonly ttlMs?: number;
  /** Told when a held lease could not be renewed (work under it must stop). */
  readonly onLost?: (name: string) => void;
  readonly log?: (line: string) => void;
}

/**
 * Partition leases for several instances on one KV. A lease is two keys: the holder (changes only
 * on takeover; commits made under the lease check its version) and its expiry (renewed every
 * third of the TTL). An expired lease can be taken by anyone; a holder that cannot renew in time
 * stops acting before the lease can be taken over.
 */
export class LeaseManager {
  readonly #held = new Map<string, Lease>();
  readonly #ttl: number;
  readonly #renewer: ReturnType<typeof setInterval>;
  #renewing = false;
  #closed = false;

  constructor(private readonly options: LeaseOptions) {
    this.#ttl = options.ttlMs ?? 10_000;
    this.#renewer = setInterval(() => this.#renewAll(), Math.max(50, Math.floor(this.#ttl / 3)));
  }

  get ttlMs(): number {
    return this.#ttl;
  }

  /** The lease if this instance holds it and may still act on it. */
  held(name: string): Lease | undefined {
    const lease = this.#held.get(name);
    if (lease && lease.validUntil > this.options.clock.now()) return lease;
    return undefined;
  }

  /**
   * Takes the lease if it is free, expired, or already ours. Returns null with the time (ms) the
   * current holder's lease runs out otherwise.
   */
  async acquire(name: string): Promise<Lease | { heldFor: number }> {
    const mine = this.held(name);
    if (mine) return mine;
    if (this.#closed) return { heldFor: this.#ttl };
    const now = this.options.clock.now();
    const [holder, expiry] = await this.options.kv.getMany<[Holder, number]>([
      keys.lease(name),
      keys.leaseExpiry(name),
    ]);
    const free = !holder.value || holder.value.owner === this.options.owner || (expiry.value ?? 0) <= now;
    if (!free) return { heldFor: Math.max(0, (expiry.value ?? now) - now) };
    const until = now + this.#ttl;
    const res = await this.options.kv.atomic()
      .check(holder, expiry)
      .set(keys.lease(name), { owner: this.options.owner, since: now } satisfies Holder)
      .set(keys.leaseExpiry(name), until, { expireIn: this.#ttl * 10 })
      .commit();
    if (!res.ok) return await this.#stillMine(name, holder.versionstamp, now) ?? { heldFor: this.#ttl };
    const lease: Lease = {
      name,
      check: { key: keys.lease(name), versionstamp: res.versionstamp },
      validUntil: until - this.#margin(),
    };
    this.#held.set(name, lease);
    return lease;
  }

  /**
   * Ours all along, and its renewal landed in between (so the take's check failed): it still holds
   * when the holder key is the one this instance wrote, with the expiry KV has now. Read from KV,
   * not from the renewal's answer, which may not have been handled yet.
   */
  async #stillMine(name: string, holderVersion: string | null, now: number): Promise<Lease | undefined> {
    const lease = this.#held.get(name);
    if (!lease || holderVersion !== lease.check.versionstamp) return undefined;
    const expiry = (await this.options.kv.get<number>(keys.leaseExpiry(name))).value ?? 0;
    if (expiry - this.#margin() <= now || this.#held.get(name) !== lease) return undefined;
    lease.validUntil = Math.max(lease.validUntil, expiry - this.#margin());
    return lease;
  }

  /** Gives a lease back so another instance can take it at once. */
  async release(name: string): Promise<void> {
    const lease = this.#held.get(name);
    if (!lease) return;
    this.#held.delete(name);
    await this.options.kv.atomic()
      .check(lease.check)
      .delete(keys.lease(name))
      .delete(keys.leaseExpiry(name))
      .commit()
      .catch(() => {});
  }

  /** Releases every lease (graceful stop). */
  async releaseAll(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#renewer);
    await Promise.all([...this.#held.keys()].map((n) => this.release(n)));
  }

  /** Stops renewing without releasing anything (what a crashed instance leaves behind). */
  abandon(): void {
    this.#closed = true;
    clearInterval(this.#renewer);
    this.#held.clear();
  }

  #margin(): number {
    return Math.min(2000, Math.floor(this.#ttl / 5));
  }

  /**
   * Renews every held lease, up to `RENEW_PER_COMMIT` in one commit; one round at a time (a round slower than the
   * interval is not joined by another, which would only add to the KV's load).
   */
  async #renewAll(): Promise<void> {
    if (this.#renewing) return;
    this.#renewing = true;
    try {
      const leases = [...this.#held.values()];
      for (let i = 0; i < leases.length && !this.#closed; i += RENEW_PER_COMMIT) {
        await this.#renew(leases.slice(i, i + RENEW_PER_COMMIT));
      }
    } finally {
      this.#renewing = false;
    }
  }

  /** Renews `leases` in one commit; when a check fails (one was taken over), one by one to find which. */
  async #renew(leases: readonly Lease[]): Promise<void> {
    // Stopped meanwhile, or a lease was given back or taken again (a new holder version): this renewal has
    // nothing to keep of it, and a failed check would drop the lease taken again.
    const live = leases.filter((l) => this.#held.get(l.name) === l);
    if (this.#closed || live.length === 0) return;
    const now = this.options.clock.now();
    const op = this.options.kv.atomic();
    for (const l of live) {
      op.check(l.check).set(keys.leaseExpiry(l.name), now + this.#ttl, { expireIn: this.#ttl * 10 });
    }
    let res: Deno.KvCommitResult | Deno.KvCommitError;
    try {
      res = await op.commit();
    } catch (err) {
      for (const l of live) {
        if (this.#held.get(l.name) === l && l.validUntil <= this.options.clock.now()) {
          this.#lose(l.name, describeError(err));
        }
      }
      return;
    }
    if (res.ok) {
      for (const l of live) if (this.#held.get(l.name) === l) l.validUntil = now + this.#ttl - this.#margin();
      return;
    }
    if (live.length > 1) {
      for (const l of live) await this.#renew([l]);
      return;
    }
    if (this.#held.get(live[0]!.name) === live[0]) this.#lose(live[0]!.name, "taken over");
  }

  #lose(name: string, why: string): void {
    this.#held.delete(name);
    this.options.log?.(`Lease ${name} lost (${why}); its work stops here`);
    this.options.onLost?.(name);
  }
}
