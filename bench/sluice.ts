import { freePort, SluiceProcess } from "../tests/crash/child.ts";
import { metricValues } from "./measure.ts";

export const ADMIN = "bench-admin-token-0123456789";

/** A fresh Sluice for one scenario: its own KV on disk, rate limit off, the fake weather API. */
export async function benchSluice(weatherUrl: string, env: Record<string, string> = {}): Promise<
  { sluice: SluiceProcess; dir: string; mqttPort: number; close(): Promise<void> }
> {
  const dir = await Deno.makeTempDir({ prefix: "sluice-bench-" });
  const mqttPort = freePort();
  const sluice = new SluiceProcess(freePort(), {
    ADMIN_TOKEN: ADMIN,
    KV_PATH: `${dir}/sluice.kv`,
    RATE_LIMIT: "off",
    WEATHER_API_URL: weatherUrl,
    MQTT_PORT: String(mqttPort),
    ...env,
  });
  await sluice.start();
  return {
    sluice,
    dir,
    mqttPort,
    close: async () => {
      await sluice.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}

/** Creates devices `<prefix>-1..n` (50 at a time) and returns their tokens in order. */
export async function createDevices(url: string, prefix: string, n: number): Promise<string[]> {
  const tokens: string[] = new Array(n);
  for (let i = 0; i < n; i += 50) {
    await Promise.all(Array.from({ length: Math.min(50, n - i) }, async (_, k) => {
      const res = await fetch(`${url}/admin/devices`, {
        method: "POST",
        headers: { authorization: `Bearer ${ADMIN}` },
        body: JSON.stringify({ id: `${prefix}-${i + k + 1}` }),
      });
      if (res.status !== 201) throw new Error(`device ${prefix}-${i + k + 1}: ${res.status} ${await res.text()}`);
      tokens[i + k] = (await res.json()).token;
    }));
  }
  return tokens;
}

/** A local stand-in for the weather API (no network in benchmarks). */
export function fakeWeather(): { url: string; close(): Promise<void> } {
  const server = Deno.serve(
    { port: 0, hostname: "127.0.0.1", onListen: () => {} },
    () => Response.json({ current: { temperature_2m: 4.5 } }),
  );
  return { url: `http://127.0.0.1:${server.addr.port}/v1/forecast`, close: () => server.shutdown() };
}

/** Waits until every pump `<prefix>-1..n` has `readings` readings; resolves with the time it took. */
export async function untilProcessed(url: string, prefix: string, n: number, readings: number, timeoutMs: number) {
  const started = performance.now();
  for (let i = 1; i <= n; i++) {
    for (;;) {
      const res = await fetch(`${url}/pumps/${prefix}-${i}`, { headers: { authorization: `Bearer ${ADMIN}` } });
      const body = res.ok ? await res.json() : (await res.body?.cancel(), null);
      if (body && body.readings >= readings) break;
      if (performance.now() - started > timeoutMs) throw new Error(`${prefix}-${i} not processed in time`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return performance.now() - started;
}

/** Tasks Sluice has done so far (`sluice_tasks_done_total`). */
export async function tasksDone(url: string): Promise<number> {
  return (await metricValues(url, ["sluice_tasks_done_total"]))[0]!;
}

/**
 * Waits until Sluice has done `total` tasks, asking its `/metrics` every 10 ms (one cheap request,
 * where reading every pump would load Sluice and end the wait late); resolves with `performance.now()`
 * at the answer that showed them done.
 */
export async function untilDone(url: string, total: number, timeoutMs: number): Promise<number> {
  const started = performance.now();
  for (;;) {
    if ((await tasksDone(url)) >= total) return performance.now();
    if (performance.now() - started > timeoutMs) throw new Error(`${total} tasks not done in ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
