import { mqttTransport } from "../../simulators/mqtt.ts";
import { runSim } from "../../simulators/runner.ts";
import { PUMP_STREAM_PREFIX } from "../../core/streams.ts";
import { cpuMeter, kvCommitFigures, kvCommitTotals, percentiles, rssMiB } from "../measure.ts";
import type { ScenarioResult } from "../result.ts";
import { ADMIN, benchSluice, untilProcessed } from "../sluice.ts";

const PUMPS = 1000;

/**
 * Ordered end-to-end processing with the sample processor over 1,000 pumps: first as fast as it
 * goes (sent until processed), then at half that rate for the latency from send to pump state
 * updated (the reading's `time` is its send time; the pump event's commit time ends it).
 */
export async function endToEnd(
  weatherUrl: string,
  total: number,
  latencySeconds: number,
  /** The rate of the latency part; half the measured throughput when not given. */
  latencyRate?: number,
): Promise<ScenarioResult[]> {
  const b = await benchSluice(weatherUrl);
  try {
    const pid = b.sluice.pid!;
    const url = `mqtt://127.0.0.1:${b.mqttPort}`;
    const base = {
      devices: PUMPS,
      url,
      adminUrl: b.sluice.url,
      adminToken: ADMIN,
      prefix: "e2e",
      seed: 2,
      inflight: 4,
    };
    /** Exactly `count` readings over the fleet (every pump its share) at `rate`, or as fast as acknowledged. */
    const send = (count: number, rate: number, onStart?: () => void) =>
      runSim({ ...base, rate, duration: count / rate, count }, mqttTransport(url), { onStart });
    // Warm up: every pump gets its first reading (devices created, actors loaded, weather cached).
    await send(PUMPS, 5000);
    await untilProcessed(b.sluice.url, "e2e", PUMPS, 1, 120_000);

    const per = Math.max(1, Math.round(total / PUMPS));
    const kv0 = await kvCommitTotals(b.sluice.url);
    const cpu = cpuMeter(pid);
    const onStart = cpu.start;
    const burst = await send(per * PUMPS, 100_000, onStart);
    await untilProcessed(b.sluice.url, "e2e", PUMPS, 1 + per, 300_000);
    // From the first send (the devices are provisioned and connected before it) to the last pump state.
    const wall = (performance.now() - burst.startedAt) / 1000;
    const rate = Math.round((per * PUMPS) / wall);
    const kvCommits = kvCommitFigures(kv0, await kvCommitTotals(b.sluice.url), wall, per * PUMPS);
    const throughput: ScenarioResult = {
      scenario: "Ordered end-to-end, sample processor, 1,000 pumps (MQTT in)",
      rate,
      unit: "msgs/s",
      rssMiB: rssMiB(pid),
      ...cpu.read(wall),
      kvCommits,
      target: "≥ 10,000 msgs/s",
      met: rate >= 10_000,
      notes: `${per * PUMPS} readings from send of the first to the last one's pump state`,
    };

    const half = latencyRate ?? Math.max(100, Math.round(rate / 2));
    const since = Date.now();
    // A count, not a window: every pump's share goes out, so every pump's last reading can be waited for.
    const sent = await send(Math.round(half * latencySeconds), half, onStart);
    const wall1 = (performance.now() - sent.startedAt) / 1000;
    await untilProcessed(b.sluice.url, "e2e", PUMPS, 1 + per + Math.floor(sent.acked / PUMPS), 120_000);
    const cpuShares = cpu.read(wall1);
    await b.sluice.stop();
    const kv = await Deno.openKv(`${b.dir}/sluice.kv`);
    const latencies: number[] = [];
    for await (const e of kv.list<{ data: { reading: { time: string } }; at: number }>({ prefix: ["ev"] })) {
      if (!(e.key[1] as string).startsWith(PUMP_STREAM_PREFIX)) continue;
      const sentAt = Date.parse(e.value.data.reading.time);
      if (sentAt >= since) latencies.push(e.value.at - sentAt);
    }
    kv.close();
    const stateLatency = percentiles(latencies);
    return [throughput, {
      scenario: `Send → pump state updated at ${latencyRate ? `${half} msgs/s` : `half load (${half} msgs/s)`}`,
      rate: Math.round(latencies.length / wall1),
      unit: "msgs/s",
      stateLatency,
      ackLatency: sent.latency,
      ...cpuShares,
      target: "p99 < 50 ms",
      met: stateLatency.p99 < 50,
      notes: `${latencies.length} readings`,
    }];
  } finally {
    await b.close();
  }
}
