import { pumpStream, taskStream } from "../../core/streams.ts";
import { trueHead } from "../../store/heads.ts";
import { keys } from "../../store/keys.ts";
import { SluiceProcess } from "./child.ts";
import { freePort } from "./child.ts";

/** How a device sends one message; resolves once Sluice acknowledged it, throws otherwise. */
export type Sender = (device: string, token: string, id: string, csv: string) => Promise<void>;

/** Builds a sender per protocol once the child runs (MQTT, AMQP plug in here). */
export interface Protocol {
  readonly name: string;
  /** Settings the child needs for this protocol. */
  readonly env?: Record<string, string>;
  connect(sluice: SluiceProcess): Promise<{ send: Sender; close(): Promise<void> }>;
}

export interface CrashOptions {
  readonly devices: number;
  readonly perDevice: number;
  readonly minKills: number;
  /** A kill comes this many ms after the previous start, at random within the range. */
  readonly killAfterMs: readonly [number, number];
  readonly protocols: readonly Protocol[];
  readonly timeoutMs: number;
  readonly log: (line: string) => void;
}

/** What the crash test saw. */
export interface CrashReport {
  readonly sent: number;
  readonly acked: number;
  readonly processed: number;
  readonly lost: number;
  readonly duplicated: number;
  readonly outOfOrder: number;
  readonly tasks: number;
  readonly stuck: number;
  readonly kills: number;
  /** Exit code of the final graceful stop (SIGTERM). */
  readonly stopCode: number;
  readonly seconds: number;
}

const ADMIN = "crash-test-admin-token-0123456789";

/** The HTTP sender: POST invoke with an id, resent until 202. */
export const httpProtocol: Protocol = {
  name: "http",
  connect: (sluice) =>
    Promise.resolve({
      send: async (_device, token, id, csv) => {
        const res = await fetch(`${sluice.url}/channels/blog_queuing/invoke`, {
          method: "POST",
          headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
          body: JSON.stringify({ method: "blog/queues/processor", params: { data: csv }, id }),
        });
        await res.body?.cancel();
        if (res.status !== 202) throw new Error(`HTTP ${res.status}`);
      },
      close: () => Promise.resolve(),
    }),
};

/**
 * Drives devices that resend every message until acknowledged, kills Sluice with SIGKILL at random
 * moments and starts it again, then checks every acknowledged message became exactly one task and
 * one pump reading, in per-device order.
 */
export async function runCrashTest(options: CrashOptions): Promise<CrashReport> {
  const started = Date.now();
  const dir = await Deno.makeTempDir({ prefix: "sluice-crash-" });
  const env: Record<string, string> = {
    ADMIN_TOKEN: ADMIN,
    KV_PATH: `${dir}/sluice.kv`,
    RATE_LIMIT: "off",
    WEATHER_API_URL: "off",
    MQTT_PORT: "off",
    RETRY_BASE_MS: "50",
    ...Object.assign({}, ...options.protocols.map((p) => p.env ?? {})),
  };
  const sluice = new SluiceProcess(freePort(), env);
  await sluice.start();
  const devices = Array.from({ length: options.devices }, (_, i) => `crash-${String(i).padStart(2, "0")}`);
  const tokens = new Map<string, string>();
  for (const d of devices) {
    const res = await fetch(`${sluice.url}/admin/devices`, {
      method: "POST",
      headers: { authorization: `Bearer ${ADMIN}` },
      body: JSON.stringify({ id: d }),
    });
    if (res.status !== 201) throw new Error(`Creating ${d}: ${res.status} ${await res.text()}`);
    tokens.set(d, (await res.json()).token);
  }

  let sent = 0, acked = 0, sending = true;
  const connections = await Promise.all(options.protocols.map((p) => p.connect(sluice)));
  const drive = async (device: string, i: number) => {
    const conn = connections[i % connections.length]!;
    for (let n = 0; n < options.perDevice; n++) {
      const csv = `${n},1.5,45.5:-73.6,2026-11-25T10:00:00Z`;
      for (let attempt = 0;; attempt++) {
        sent++;
        try {
          await conn.send(device, tokens.get(device)!, `${device}-${n}`, csv);
          acked++;
          break;
        } catch {
          await new Promise((r) => setTimeout(r, Math.min(500, 20 * (attempt + 1))));
        }
      }
    }
  };
  const driving = Promise.all(devices.map(drive)).finally(() => sending = false);

  const killing = (async () => {
    while (sending || sluice.kills < options.minKills) {
      const [lo, hi] = options.killAfterMs;
      await new Promise((r) => setTimeout(r, lo + Math.random() * (hi - lo)));
      await sluice.kill();
      options.log(`kill -9 #${sluice.kills} (sent ${sent}, acked ${acked})`);
      await sluice.start();
    }
  })();
  await Promise.all([driving, killing]);
  await Promise.all(connections.map((c) => c.close()));

  // Every pump must reach its count: work queued before a kill resumes after the start.
  const deadline = Date.now() + options.timeoutMs;
  for (const d of devices) {
    while (Date.now() < deadline) {
      const res = await fetch(`${sluice.url}/pumps/${d}`, { headers: { authorization: `Bearer ${ADMIN}` } });
      const body = res.ok ? await res.json() : (await res.body?.cancel(), null);
      if (body && body.readings >= options.perDevice) break;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  const stopCode = await sluice.stop();

  const kv = await Deno.openKv(env.KV_PATH);
  let processed = 0, lost = 0, duplicated = 0, outOfOrder = 0, tasks = 0, stuck = 0;
  try {
    for (const d of devices) {
      const temps: number[] = [];
      for await (
        const e of kv.list<{ data: { reading: { temperature: number } } }>({ prefix: keys.eventsOf(pumpStream(d)) })
      ) {
        temps.push(e.value.data.reading.temperature);
      }
      processed += temps.length;
      const seen = new Set(temps);
      duplicated += temps.length - seen.size;
      for (let n = 0; n < options.perDevice; n++) if (!seen.has(n)) lost++;
      for (let k = 1; k < temps.length; k++) if (temps[k]! < temps[k - 1]!) outOfOrder++;
      const stream = taskStream("blog_queuing", d);
      for await (const _ of kv.list({ prefix: keys.eventsOf(stream) })) tasks++;
      const [cursor, retry] = await kv.getMany<[number, unknown]>([keys.cursor(stream), keys.retry(stream)]);
      if ((cursor.value ?? 0) !== (await trueHead(kv, stream)) || retry.value) stuck++;
    }
  } finally {
    kv.close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
  return {
    sent,
    acked,
    processed,
    lost,
    duplicated,
    outOfOrder,
    tasks,
    stuck,
    kills: sluice.kills,
    stopCode,
    seconds: Math.round((Date.now() - started) / 100) / 10,
  };
}
