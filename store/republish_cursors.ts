import type { Committer } from "./committer.ts";
import { keys } from "./keys.ts";

/**
 * Where re-publishing to a broker stands, per channel: the seq of the last message the broker
 * confirmed. Kept in KV, so a restart (or another instance taking the subscriber lease) resumes
 * after it instead of at the channel's head.
 */
export class RepublishCursors {
  constructor(
    private readonly kv: Deno.Kv,
    private readonly committer: Committer,
    /** Which re-publisher ("amqp", "mqtt"): each has its own cursors. */
    private readonly protocol: string,
  ) {}

  /** The last confirmed seq of a channel, or undefined when this re-publisher never started on it. */
  async load(channel: string): Promise<number | undefined> {
    const { value } = await this.kv.get<number>(keys.republished(this.protocol, channel));
    return typeof value === "number" ? value : undefined;
  }

  async save(channel: string, seq: number): Promise<void> {
    await this.committer.write({ sets: [{ key: keys.republished(this.protocol, channel), value: seq }] });
  }

  async started(): Promise<boolean> {
    return (await this.kv.get(keys.republishStarted(this.protocol))).value === true;
  }

  async markStarted(): Promise<void> {
    await this.committer.write({ sets: [{ key: keys.republishStarted(this.protocol), value: true }] });
  }
}
