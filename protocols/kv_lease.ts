import type { Clock } from "../core/clock.ts";

interface LeaseValue {
  readonly holder: string;
  /** Expiry, ms; KV's `expireIn` may delete the key later than that. */
  readonly until: number;
}

/**
 * A lease in KV: a key with `expireIn`, renewed by its holder, taken with an atomic check, so one
 * instance at a time does the job (subscribe on an external MQTT broker, re-publish to AMQP).
 */
export class KvLease {
  constructor(
    private readonly kv: Deno.Kv,
    private readonly key: Deno.KvKey,
    private readonly holder: string,
    private readonly ttlMs: number,
    private readonly clock: Clock,
  ) {}

  /** Takes the lease when it is free or already ours (renewing it); false while another instance holds it. */
  async claim(): Promise<boolean> {
    const entry = await this.kv.get<LeaseValue>(this.key);
    const now = this.clock.now();
    if (entry.value && entry.value.holder !== this.holder && entry.value.until > now) return false;
    const value: LeaseValue = { holder: this.holder, until: now + this.ttlMs };
    const res = await this.kv.atomic().check(entry).set(this.key, value, { expireIn: this.ttlMs }).commit();
    return res.ok;
  }

  /** Gives the lease up at once (when ours), so another instance need not wait for it to expire. */
  async release(): Promise<void> {
    const entry = await this.kv.get<LeaseValue>(this.key);
    if (entry.value?.holder !== this.holder) return;
    await this.kv.atomic().check(entry).delete(this.key).commit();
  }
}
