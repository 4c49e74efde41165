import mqtt, { type IClientOptions, type MqttClient } from "mqtt";
import type { MqttAdapter } from "../../protocols/mqtt/mod.ts";
import { type TestSluice, waitFor } from "./sluice.ts";

/** The MQTT adapter of a test Sluice. */
export function mqttAdapter(s: TestSluice): MqttAdapter {
  const adapter = s.server.adapters.find((a) => a.name === "mqtt");
  if (!adapter) throw new Error("The MQTT adapter is not running (pass MQTT_PORT or MQTT_URL)");
  return adapter as MqttAdapter;
}

/** `mqtt://127.0.0.1:<port>` of the embedded broker. */
export function brokerUrl(s: TestSluice): string {
  const port = mqttAdapter(s).port;
  if (port === null) throw new Error("The embedded broker has no TCP port");
  return `mqtt://127.0.0.1:${port}`;
}

/** Connects an mqtt.js client (no automatic reconnect unless asked) and waits for the CONNACK. */
export async function connect(url: string, options: IClientOptions = {}): Promise<MqttClient> {
  return await mqtt.connectAsync(url, { reconnectPeriod: 0, connectTimeout: 10_000, ...options });
}

/** Connects as a device: username = device id, password = token. */
export function connectDevice(url: string, id: string, token: string, options: IClientOptions = {}) {
  return connect(url, {
    username: id,
    password: token,
    clientId: `${id}-${crypto.randomUUID().slice(0, 8)}`,
    ...options,
  });
}

/** The seed's MQTT payload for reading number `n` (its time encodes `n`). */
export function csvReading(n: number, extra: Record<string, unknown> = {}): string {
  const time = new Date(Date.UTC(2026, 10, 25, 0, 0, 0) + n * 1000).toISOString();
  return JSON.stringify({
    method: "blog/queues/processor",
    params: { data: `${20 + (n % 10)},1.5,45.5:-73.5,${time}` },
    ...extra,
  });
}

/** The reading number encoded by `csvReading` in a recorded reading's time. */
export function readingNumber(time: string): number {
  return (Date.parse(time) - Date.UTC(2026, 10, 25, 0, 0, 0)) / 1000;
}

/** Every reading number on a pump's log, in log order. */
export async function readingNumbers(s: TestSluice, pump: string): Promise<number[]> {
  const out: number[] = [];
  let from: number | null = 1;
  while (from !== null) {
    const res = await s.admin(`/pumps/${pump}/events?from=${from}&limit=1000`);
    if (res.status === 404) return out;
    const page = await res.json() as { events: { data: { reading: { time: string } } }[]; next: number | null };
    for (const e of page.events) out.push(readingNumber(e.data.reading.time));
    from = page.next;
  }
  return out;
}

/** Waits until a pump has `count` readings and returns their numbers in log order. */
export async function waitForReadings(s: TestSluice, pump: string, count: number, timeoutMs = 60_000) {
  return await waitFor(
    async () => {
      const numbers = await readingNumbers(s, pump);
      return numbers.length >= count ? numbers : null;
    },
    timeoutMs,
    `${count} readings on ${pump}`,
  );
}

/** The refusals recorded at /admin/refused. */
export async function refusals(s: TestSluice): Promise<{ device: string | null; code: string; reason: string }[]> {
  return (await (await s.admin("/admin/refused")).json()).refused;
}

/** Resolves when the client is closed by the other side (or rejects after `timeoutMs`). */
export function closedWithin(client: MqttClient, timeoutMs: number): Promise<number> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    if (!client.connected) return resolve(0);
    const timer = setTimeout(() => reject(new Error(`Still connected after ${timeoutMs} ms`)), timeoutMs);
    client.once("close", () => {
      clearTimeout(timer);
      resolve(Date.now() - started);
    });
  });
}
