import { cpuMeter, percentiles, rssMiB } from "../measure.ts";
import type { ScenarioResult } from "../result.ts";
import { benchSluice, createDevices, untilDone } from "../sluice.ts";

/**
 * Devices Sluice has not seen yet (a fleet provisioned at once) all sending at once:
 * each one's first message reads its token, its lane and its pump from KV before anything is cached. `devices`
 * readings, one a device, go out over HTTP (`POST /blog/queues/feed`, as the article's gateways send them) at `rate`,
 * open loop (a slow answer does not slow the sending); then the same again, every device known by then; then again
 * after a restart of Sluice (a clean stop), every device known to KV and none yet to the new process.
 */
export async function coldBurst(weatherUrl: string, devices: number, rate: number): Promise<ScenarioResult[]> {
  const b = await benchSluice(weatherUrl, { MQTT_PORT: "off" });
  try {
    const tokens = await createDevices(b.sluice.url, "cold", devices);
    const rows: ScenarioResult[] = [];
    const passes = ["new to Sluice", "known (second reading)", "known, Sluice just restarted (third reading)"];
    for (const [minute, pass] of passes.entries()) {
      if (minute === 2) {
        // Once the readings so far are processed (each a task), a clean stop, as a deploy or an upgrade does.
        await untilDone(b.sluice.url, 2 * devices, 120_000);
        await b.sluice.stop();
        await b.sluice.start();
      }
      const pid = b.sluice.pid!;
      const cpu = cpuMeter(pid), t0 = performance.now();
      const { latencies, refused } = await sendOnce(b.sluice.url, tokens, rate, minute);
      const wall = (performance.now() - t0) / 1000;
      rows.push({
        scenario: `Burst of ${devices.toLocaleString("en")} devices ${pass}, HTTP feed at ${rate} msgs/s`,
        rate: Math.round(latencies.length / wall),
        unit: "msgs/s",
        ackLatency: percentiles(latencies),
        rssMiB: rssMiB(pid),
        ...cpu.read(wall),
        notes: `${latencies.length} answered 200, ${refused} refused (503 busy or another status), from the first ` +
          `send to the last answer`,
      });
    }
    return rows;
  } finally {
    await b.close();
  }
}

/** One reading from each device, paced at `rate`; the latency of each answered 200, and how many were not. */
async function sendOnce(url: string, tokens: readonly string[], rate: number, minute: number) {
  const latencies: number[] = [];
  let refused = 0;
  const sends: Promise<void>[] = [];
  const start = performance.now();
  const body = JSON.stringify({
    temperature: "21.5",
    pressure: "1.2",
    coordinates: "45.50:-73.56",
    time: `2026-11-25T10:0${minute}:00Z`,
  });
  for (const [i, token] of tokens.entries()) {
    const due = start + (i * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    const sent = performance.now();
    sends.push(
      fetch(`${url}/blog/queues/feed`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body,
      }).then(async (res) => {
        await res.body?.cancel();
        if (res.status === 200) latencies.push(performance.now() - sent);
        else refused++;
      }, () => void refused++),
    );
  }
  await Promise.all(sends);
  return { latencies, refused };
}
