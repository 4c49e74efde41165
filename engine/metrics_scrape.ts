import type { Sample } from "../core/metrics.ts";
import { PUMP_STREAM_PREFIX, topicStream } from "../core/streams.ts";
import type { TaskQueuedData } from "../core/tasks.ts";
import type { ChannelRegistry } from "../store/channel_registry.ts";
import { type HeadOf, queueDepths } from "./channel_stats.ts";
import { keys } from "../store/keys.ts";
import { trueHead } from "../store/heads.ts";
import { chunked } from "../store/kv_limits.ts";
import { subscriberConsumer } from "./lanes.ts";

/** A metric family given beside the in-memory ones. */
export interface Gauge {
  readonly name: string;
  readonly help: string;
  readonly samples: Sample[];
}

/** Partitions whose first waiting task is read to find a channel's oldest. */
const LAG_SCAN = 500;

/** Gauges that need reads: queue depth and lag per channel, pumps stored. */
export async function scrapeGauges(
  kv: Deno.Kv,
  channels: ChannelRegistry,
  headOf: HeadOf,
  now: number,
  /** A task acked from the inbox and not yet at its stream's key. */
  unmoved: (stream: string, seq: number) => { readonly data: unknown } | undefined,
): Promise<Gauge[]> {
  const depth: Sample[] = [], lag: Sample[] = [], subscribersBehind: Sample[] = [];
  const depths = await queueDepths(kv, headOf);
  const registered = await channels.list();
  for (const channel of registered) {
    if (channel.subscribers.length > 0) {
      subscribersBehind.push(...await subscriberBacklog(kv, channel.name, channel.subscribers, headOf));
    }
  }
  // A channel deleted with tasks queued still runs them: its gauges stay until they are done.
  const names = new Set(registered.map((c) => c.name));
  for (const [name, d] of depths) if (d.queued > 0) names.add(name);
  for (const name of names) {
    const { queued, behind } = depths.get(name) ?? { queued: 0, behind: new Map() };
    let oldest = now;
    const toRead: Deno.KvKey[] = [];
    for (const [stream, [cursor]] of [...behind].slice(0, LAG_SCAN)) {
      const first = unmoved(stream, cursor + 1) as { data: TaskQueuedData } | undefined;
      if (first) oldest = Math.min(oldest, first.data.receivedAt);
      else toRead.push(keys.event(stream, cursor + 1));
    }
    for (const read of await Promise.all(chunked(toRead).map((c) => kv.getMany<{ data: TaskQueuedData }[]>(c)))) {
      for (const first of read) if (first.value) oldest = Math.min(oldest, first.value.data.receivedAt);
    }
    depth.push({ labels: { channel: name }, value: queued });
    lag.push({ labels: { channel: name }, value: (now - oldest) / 1000 });
  }
  let pumps = 0;
  for await (const _ of kv.list({ start: keys.head(PUMP_STREAM_PREFIX), end: keys.head("p0") })) pumps++;
  return [
    { name: "sluice_queue_depth", help: "Tasks queued and not yet done or dead, per channel", samples: depth },
    { name: "sluice_queue_lag_seconds", help: "Age of the oldest queued task, per channel", samples: lag },
    {
      name: "sluice_subscriber_behind",
      help: "Topic messages a subscriber script has not run yet, per channel and script",
      samples: subscribersBehind,
    },
    { name: "sluice_pumps", help: "Pumps with at least one reading", samples: [{ value: pumps }] },
  ];
}

/** Each subscriber script's messages left: the topic's head less its cursor. */
async function subscriberBacklog(
  kv: Deno.Kv,
  channel: string,
  scripts: readonly string[],
  headOf: HeadOf,
): Promise<Sample[]> {
  const topic = topicStream(channel);
  const head = headOf(topic, await trueHead(kv, topic)); // as the channel's stats count it
  const cursorKeys = scripts.map((script) => keys.cursor(topic, subscriberConsumer(script)));
  const cursors = (await Promise.all(chunked(cursorKeys).map((c) => kv.getMany<number[]>(c)))).flat();
  return scripts.map((script, i) => ({
    labels: { channel, script },
    value: Math.max(0, head - (cursors[i]?.value ?? 0)),
  }));
}

/** How long the gauges that need reads are reused (`GET /metrics` answers within a second of them). */
export const GAUGES_MAX_AGE_MS = 1000;

/** A pass over the KV is reused ten times as long as it took (at 30,000 pumps one took 0.4–2.3 s)… */
const REUSE_PER_SCRAPE_MS = 10;
/** …but never longer than this. */
const GAUGES_LONGEST_AGE_MS = 30_000;

/**
 * `scrape` at most once per `maxAgeMs`, or per ten times the last scrape's duration when that is longer (a large
 * fleet's pass then takes at most a tenth of the KV's time): a scrape within that time gets the last answer (or the
 * one under way), so `/metrics` asked every few milliseconds (a bench waiting for a count, a dashboard) costs one
 * pass over the KV a second, not one per request. A failed scrape is not kept.
 */
export function reusedFor(
  scrape: () => Promise<Gauge[]>,
  maxAgeMs = GAUGES_MAX_AGE_MS,
  now: () => number = () => performance.now(),
): () => Promise<Gauge[]> {
  let last: { at: number; age: number; gauges: Promise<Gauge[]> } | undefined;
  return () => {
    const at = now();
    if (last && at - last.at < last.age) return last.gauges;
    const gauges = scrape();
    const kept = { at, age: maxAgeMs, gauges };
    last = kept;
    gauges.then(
      () => kept.age = Math.min(GAUGES_LONGEST_AGE_MS, Math.max(maxAgeMs, (now() - at) * REUSE_PER_SCRAPE_MS)),
      () => {
        if (last === kept) last = undefined;
      },
    );
    return gauges;
  };
}

/**
 * Flattens an adapter's counters since start (`{accepted: 3, deadLettered: {bad_json: 1}}`) into
 * Prometheus counters (named `…_total`, which `Metrics.render` types as counters: `sluice_amqp_accepted_total`, `sluice_amqp_dead_lettered_total{key="bad_json"}`).
 */
export function adapterSamples(adapter: string, stats: object): Gauge[] {
  const out: Gauge[] = [];
  for (const [key, value] of Object.entries(stats)) {
    const name = `sluice_${adapter}_${key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)}_total`;
    const help = `${adapter.toUpperCase()} adapter: ${key.replace(/[A-Z]/g, (c) => ` ${c.toLowerCase()}`)} since start`;
    if (typeof value === "number") out.push({ name, help, samples: [{ value }] });
    else if (value && typeof value === "object") {
      const samples = Object.entries(value).filter(([, v]) => typeof v === "number").map(([k, v]) => ({
        labels: { key: k },
        value: v as number,
      }));
      out.push({ name, help, samples });
    }
  }
  return out;
}
