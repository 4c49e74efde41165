import { rssMiB } from "../measure.ts";
import type { ScenarioResult } from "../result.ts";
import { ADMIN, benchSluice, createDevices } from "../sluice.ts";

/** Quiet time after the burst before the resident memory is read (readings still within the minute). */
const SETTLE_MS = 30_000;

/** 10,000 pumps, each with a reading in the last minute, resident: Sluice's memory. */
export async function memory(weatherUrl: string, pumps: number, v8Flags?: string): Promise<ScenarioResult> {
  const b = await benchSluice(weatherUrl, { MQTT_PORT: "off", ...(v8Flags ? { DENO_V8_FLAGS: v8Flags } : {}) });
  try {
    const url = b.sluice.url;
    const before = rssMiB(b.sluice.pid!);
    const tokens = await createDevices(url, "mem", pumps);
    let next = 0;
    await Promise.all(Array.from({ length: 32 }, async () => {
      while (next < pumps) {
        const i = next++;
        const lat = (-60 + (i % 120)).toFixed(2), lon = (-170 + (i % 340)).toFixed(2);
        const res = await fetch(`${url}/channels/blog_queuing/invoke`, {
          method: "POST",
          headers: { authorization: `Bearer ${tokens[i]}` },
          body: JSON.stringify({
            method: "blog/queues/processor",
            params: { data: `21.5,1.25,${lat}:${lon},${new Date().toISOString()}` },
          }),
        });
        await res.body?.cancel();
      }
    }));
    const deadline = Date.now() + 180_000;
    let live = 0;
    for (;;) {
      const text = await (await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${ADMIN}` } })).text();
      const stored = Number(/^sluice_pumps (\d+)/m.exec(text)?.[1] ?? 0);
      live = Number(/^sluice_pumps_live (\d+)/m.exec(text)?.[1] ?? 0);
      const queued = Number(/^sluice_queue_depth\{channel="blog_queuing"\} (\d+)/m.exec(text)?.[1] ?? 1);
      if (stored >= pumps && queued === 0) break;
      if (Date.now() > deadline) throw new Error(`only ${stored} pumps after 3 minutes`);
      await new Promise((r) => setTimeout(r, 500));
    }
    const afterBurst = rssMiB(b.sluice.pid!);
    // Resident: every pump has its reading from the last minute and its actor in memory; V8 gives
    // back the burst's garbage within a few seconds of quiet (nothing is scraped meanwhile).
    await new Promise((r) => setTimeout(r, SETTLE_MS));
    const rss = rssMiB(b.sluice.pid!);
    const text = await (await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${ADMIN}` } })).text();
    live = Number(/^sluice_pumps_live (\d+)/m.exec(text)?.[1] ?? 0);
    return {
      scenario: `${pumps.toLocaleString("en")} active pumps, resident${v8Flags ? ` (DENO_V8_FLAGS=${v8Flags})` : ""}`,
      rssMiB: rss,
      target: "< 200 MB",
      met: rss < 200 && live === pumps,
      notes: `RSS ${before} MiB at start, ${afterBurst} MiB right after the burst, ${rss} MiB ${
        SETTLE_MS / 1000
      } s later; ${live} pump actors in memory`,
    };
  } finally {
    await b.close();
  }
}
