/**
 * How long a local KV keeps an event that has no retention of its own: 100 years, for good.
 *
 * Local Deno KV is SQLite with an index on every key's expiry. A key written without one is
 * indexed under -1 beside every other such key, in key order, so a commit of events over many
 * streams also touches one page of that index per stream. With an expiry the index entries go to
 * its end, a page or two per commit. Measured with the KV alone (commits of 300 new keys over 100
 * streams): 7.8–9.3 ms a commit without an expiry, 4.6–5.9 ms with one. In Sluice the disk written
 * per message fell by a sixth to over a quarter (HTTP invoke 24.3 → 17.6 KiB, MQTT 10.2 → 8.5) and the KV
 * thread's CPU a little; the throughput moved in short runs (MQTT 1.29–1.36 × in three `--quick`
 * pairs) but not in full ones, where the main thread is the bound (MQTT 1.02 ×, end to end 0.96 ×,
 * four pairs each, ABBA). A key rewritten in place (a cursor, a head) gains nothing (300 rewrites a
 * commit: 1.7–1.9 ms either way) and keeps none.
 */
export const EVENT_KEEP_MS = 100 * 365.25 * 24 * 60 * 60 * 1000;

/**
 * The options of a new event's `set`: its own retention, else, in one writer's local KV, kept for
 * good. With several writers (`SLUICE_MODE=deploy`, as on Deno Deploy) no expiry.
 */
export function eventExpiry(expireIn: number | undefined, local = true): { expireIn: number } | undefined {
  return expireIn !== undefined ? { expireIn } : local ? { expireIn: EVENT_KEEP_MS } : undefined;
}
