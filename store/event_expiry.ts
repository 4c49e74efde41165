/**
 * How long a local KV keeps an event that has no retention of its own: 100 years, for good.
 *
 * Local Deno KV is SQLite with an index on every key's expiry. A key written without one is
 * indexed under -1 beside every other such key, in key order, so a commit of events over many
 * streams also touches one page of that index per stream. With an expiry the index entries go to
 * its end, a page or two per commit. Measured with the KV alone (commits of 300 new keys over 100
 * streams): 7.8–9.3 ms a commit without an expiry, 4.6–5.9 ms with one. In Sluice (three
 * alternating `--quick` pairs): MQTT QoS 1 ingest 1.29–1.36 ×, end to end 1.05–1.62 ×, HTTP
 * invoke 1.01–1.28 ×, disk written per HTTP message 22 → 16.7 KiB. A key rewritten in place (a
 * cursor, a head) gains nothing (300 rewrites a commit: 1.7–1.9 ms either way) and keeps none.
 */
export const EVENT_KEEP_MS = 100 * 365 * 24 * 60 * 60 * 1000;

/**
 * The options of a new event's `set`: its own retention, else, in one writer's local KV, kept for
 * good. Elsewhere (several writers on Deploy's KV, which is not SQLite) no expiry.
 */
export function eventExpiry(expireIn: number | undefined, local = true): { expireIn: number } | undefined {
  return expireIn !== undefined ? { expireIn } : local ? { expireIn: EVENT_KEEP_MS } : undefined;
}
