import type { Sample } from "../core/metrics.ts";
import { PUMP_STREAM_PREFIX } from "../core/streams.ts";
import type { TaskQueuedData } from "../core/tasks.ts";
import type { ChannelRegistry } from "../store/channel_registry.ts";
import { type HeadOf, queueDepth } from "./channel_stats.ts";
import { keys } from "../store/keys.ts";

/** Gauges that need reads: queue depth and lag per channel, pumps stored. */
export async function scrapeGauges(
  kv: Deno.Kv,
  channels: ChannelRegistry,
  headOf: HeadOf,
  now: number,
  /** A task acked from the inbox and not yet at its stream's key. */
  unmoved: (stream: string, seq: number) => { readonly data: unknown } | undefined,
): Promise<{ name: string; help: string; samples: Sample[] }[]> {
  const depth: Sample[] = [], lag: Sample[] = [];
  for (const channel of await channels.list()) {
    const { queued, behind } = await queueDepth(kv, channel.name, headOf);
    let oldest = now, scanned = 0;
    for (const [stream, [cursor]] of behind) {
      if (scanned++ >= 500) break;
      const first = (unmoved(stream, cursor + 1) as { data: TaskQueuedData } | undefined) ??
        (await kv.get<{ data: TaskQueuedData }>(keys.event(stream, cursor + 1))).value;
      if (first) oldest = Math.min(oldest, first.data.receivedAt);
    }
    depth.push({ labels: { channel: channel.name }, value: queued });
    lag.push({ labels: { channel: channel.name }, value: (now - oldest) / 1000 });
  }
  let pumps = 0;
  for await (const _ of kv.list({ start: keys.head(PUMP_STREAM_PREFIX), end: keys.head("p0") })) pumps++;
  return [
    { name: "sluice_queue_depth", help: "Tasks queued and not yet done or dead, per channel", samples: depth },
    { name: "sluice_queue_lag_seconds", help: "Age of the oldest queued task, per channel", samples: lag },
    { name: "sluice_pumps", help: "Pumps with at least one reading", samples: [{ value: pumps }] },
  ];
}

/**
 * Flattens an adapter's counters since start (`{accepted: 3, deadLettered: {bad_json: 1}}`) into
 * Prometheus counters (named `…_total`, which `Metrics.render` types as counters: `sluice_amqp_accepted_total`, `sluice_amqp_dead_lettered_total{key="bad_json"}`).
 */
export function adapterSamples(
  adapter: string,
  stats: object,
): { name: string; help: string; samples: Sample[] }[] {
  const out: { name: string; help: string; samples: Sample[] }[] = [];
  for (const [key, value] of Object.entries(stats)) {
    const name = `sluice_${adapter}_${key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)}_total`;
    const help = `${adapter} adapter: ${key} since start`;
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
