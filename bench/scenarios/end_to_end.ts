import { mqttTransport } from "../../simulators/mqtt.ts";
import { runSim } from "../../simulators/runner.ts";
import { PUMP_STREAM_PREFIX } from "../../core/streams.ts";
import { cpuMeter, kvCommitFigures, kvCommitTotals, percentiles, rssMiB } from "../measure.ts";
import type { ScenarioResult } from "../result.ts";
import { ADMIN, benchSluice, tasksDone, untilDone, untilProcessed } from "../sluice.ts";

const PUMPS = 1000;

/**
 * Ordered end-to-end processing with the sample processor over 1,000 pumps: first as fast as it
 * goes (from the first send to the last task done), then at half that rate for the latency from
 * send to pump state updated (the reading's `time` is its send time; the pump event's commit time
 * ends it).
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
    const kv0 = await kvCommitTotals(b.sluice.url, pid);
    const cpu = cpuMeter(pid);
    const onStart = cpu.start;
    const done0 = await tasksDone(b.sluice.url);
    const burst = await send(per * PUMPS, 100_000, onStart);
    const end = await untilDone(b.sluice.url, done0 + per * PUMPS, 300_000);
    // From the first send (the devices are provisioned and connected before it) to the last task done.
    const wall = (end - burst.startedAt) / 1000;
    const rate = Math.round((per * PUMPS) / wall);
    const cpuShares = cpu.read(wall);
    const kvCommits = kvCommitFigures(kv0, await kvCommitTotals(b.sluice.url, pid), wall, per * PUMPS);
    await untilProcessed(b.sluice.url, "e2e", PUMPS, 1 + per, 60_000); // every pump's state shows them
    const throughput: ScenarioResult = {
      scenario: "Ordered end-to-end, sample processor, 1,000 pumps (MQTT in)",
      rate,
      unit: "msgs/s",
      rssMiB: rssMiB(pid),
      ...cpuShares,
      kvCommits,
      target: "≥ 10,000 msgs/s",
      met: rate >= 10_000,
      notes: `${per * PUMPS} readings, from the first send to the last task done (seen in /metrics every 10 ms)`,
    };

    const half = latencyRate ?? Math.max(100, Math.round(rate / 2));
    const since = Date.now();
    // A count, not a window: every pump's share goes out, so every pump's last reading can be waited for.
    const sent = await send(Math.round(half * latencySeconds), half, onStart);
    const wall1 = (performance.now() - sent.startedAt) / 1000;
    const halfShares = cpu.read(wall1);
    await untilProcessed(b.sluice.url, "e2e", PUMPS, 1 + per + Math.floor(sent.acked / PUMPS), 120_000);
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
      ...halfShares,
      target: "p99 < 50 ms",
      met: stateLatency.p99 < 50,
      notes: `${latencies.length} readings`,
    }];
  } finally {
    await b.close();
  }
}
