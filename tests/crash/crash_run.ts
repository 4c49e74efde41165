import { pumpStream, taskStream } from "../../core/streams.ts";
import { trueHead } from "../../store/heads.ts";
import { keys } from "../../store/keys.ts";
import { freePort, SluiceProcess } from "./child.ts";

/** Reading n of a device is taken at this time + n ms. */
const FIRST_READING = Date.UTC(2026, 10, 25);

/** How a device sends one message; resolves once it is acknowledged, throws otherwise. */
export type Sender = (device: string, token: string, id: string, csv: string) => Promise<void>;

/** A protocol the devices can send by (HTTP, MQTT, AMQP plug in here). */
export interface Protocol {
  readonly name: string;
  /** Settings the child needs for this protocol. */
  readonly env?: Record<string, string>;
  /** Runs once before Sluice first starts (e.g. empties a broker's queues). */
  prepare?(): Promise<void>;
  /** Builds the protocol's sender once the child runs; it must survive the child's restarts. */
  connect(sluice: SluiceProcess): Promise<{ send: Sender; close(): Promise<void> }>;
}

export interface CrashOptions {
  readonly devices: number;
  readonly perDevice: number;
  /** Interruptions at least (more while devices are still sending). */
  readonly minKills: number;
  /** An interruption comes this many ms after the previous start, at random within the range. */
  readonly killAfterMs: readonly [number, number];
  /** Device `i` sends by `protocols[i % protocols.length]`. */
  readonly protocols: readonly Protocol[];
  /** Pause after each acknowledged message of a device (at random, up to twice this), so that the
   * interruptions find the devices still sending. */
  readonly spacingMs?: number;
  /** How Sluice is interrupted: kill -9 (the default), or SIGTERM for a graceful stop. */
  readonly signal?: "SIGKILL" | "SIGTERM";
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
  /** Interruptions (kill -9, or SIGTERM with `signal: "SIGTERM"`). */
  readonly kills: number;
  /** Sent and acknowledged per protocol, and how many devices used it. */
  readonly byProtocol: Readonly<Record<string, { devices: number; sent: number; acked: number }>>;
  /**
   * Summed over the interruptions: acknowledged messages not yet a pump reading at that moment
   * (queued in KV, or still in RabbitMQ for AMQP), per protocol. Shows the kills hit work in flight.
   */
  readonly pendingAtKills: Readonly<Record<string, number>>;
  /** Exit code of the final graceful stop (SIGTERM). */
  readonly stopCode: number;
  /** SIGTERM only: each stop's exit code and how long it took. */
  readonly stops: readonly { readonly code: number; readonly ms: number }[];
  readonly seconds: number;
}

const ADMIN = "crash-test-admin-token-0123456789";

/** One line with the figures, as `deno task test:crash` and the suite print them. */
export function formatReport(r: CrashReport): string {
  const per = Object.entries(r.byProtocol).map(([p, f]) => `${p} ${f.devices} devices ${f.acked}/${f.sent}`).join(", ");
  return `sent ${r.sent}, acked ${r.acked}, processed ${r.processed}, lost ${r.lost}, duplicated ${r.duplicated}, ` +
    `out of order ${r.outOfOrder}, tasks ${r.tasks}, stuck ${r.stuck}, kills ${r.kills}, stop exit ${r.stopCode}, ` +
    `${r.seconds} s ` +
    `(acked/sent: ${per}; pending at the kills: ${JSON.stringify(r.pendingAtKills)})`;
}

/**
 * Drives devices that resend every message until acknowledged, kills Sluice with SIGKILL at random
 * moments and starts it again, then checks every acknowledged message became exactly one task and
 * one pump reading, in per-device order.
 */
export async function runCrashTest(options: CrashOptions): Promise<CrashReport> {
  const started = Date.now();
  const dir = await Deno.makeTempDir({ prefix: "sluice-crash-" });
  for (const p of options.protocols) await p.prepare?.();
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
  const byProtocol: Record<string, { devices: number; sent: number; acked: number }> = {};
  for (const p of options.protocols) byProtocol[p.name] = { devices: 0, sent: 0, acked: 0 };
  const connections = await Promise.all(options.protocols.map((p) => p.connect(sluice)));
  const drive = async (device: string, i: number) => {
    const conn = connections[i % connections.length]!;
    const figures = byProtocol[options.protocols[i % connections.length]!.name]!;
    figures.devices++;
    for (let n = 0; n < options.perDevice; n++) {
      // The reading's time carries n (a temperature could not: readings over 200 °C are refused).
      const csv = `${20 + (n % 10)},1.5,45.5:-73.6,${new Date(FIRST_READING + n).toISOString()}`;
      for (let attempt = 0;; attempt++) {
        sent++, figures.sent++;
        try {
          await conn.send(device, tokens.get(device)!, `${device}-${n}`, csv);
          acked++, figures.acked++;
          ackedOf.set(device, n + 1);
          if (options.spacingMs) await new Promise((r) => setTimeout(r, Math.random() * 2 * options.spacingMs!));
          break;
        } catch {
          await new Promise((r) => setTimeout(r, Math.min(500, 20 * (attempt + 1))));
        }
      }
    }
  };
  const driving = Promise.all(devices.map(drive)).finally(() => sending = false);

  const stops: { code: number; ms: number }[] = [];
  let kills = 0;
  const pendingAtKills: Record<string, number> = {};
  const ackedOf = new Map<string, number>();
  const notePending = async () => {
    const res = await fetch(`${sluice.url}/pumps?limit=1000`, { headers: { authorization: `Bearer ${ADMIN}` } });
    if (!res.ok) return void await res.body?.cancel();
    const readings = new Map<string, number>(
      (await res.json()).pumps.map((p: { id: string; readings: number }) => [p.id, p.readings]),
    );
    devices.forEach((d, i) => {
      const name = options.protocols[i % options.protocols.length]!.name;
      // A reading can land before its sender saw the ack (AMQP confirms): never count below zero.
      const pending = Math.max(0, (ackedOf.get(d) ?? 0) - (readings.get(d) ?? 0));
      pendingAtKills[name] = (pendingAtKills[name] ?? 0) + pending;
    });
  };
  const killing = (async () => {
    while (sending || kills < options.minKills) {
      const [lo, hi] = options.killAfterMs;
      await new Promise((r) => setTimeout(r, lo + Math.random() * (hi - lo)));
      await notePending().catch(() => {});
      kills++;
      if (options.signal === "SIGTERM") {
        const t0 = Date.now();
        const code = await sluice.stop();
        stops.push({ code, ms: Date.now() - t0 });
        options.log(`SIGTERM #${kills}: exit ${code} in ${Date.now() - t0} ms (sent ${sent}, acked ${acked})`);
      } else {
        await sluice.kill();
        options.log(`kill -9 #${kills} (sent ${sent}, acked ${acked})`);
      }
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
      const numbers: number[] = []; // reading numbers, in log order
      for await (
        const e of kv.list<{ data: { reading: { time: string } } }>({ prefix: keys.eventsOf(pumpStream(d)) })
      ) {
        numbers.push(Date.parse(e.value.data.reading.time) - FIRST_READING);
      }
      processed += numbers.length;
      const seen = new Set(numbers);
      duplicated += numbers.length - seen.size;
      for (let n = 0; n < options.perDevice; n++) if (!seen.has(n)) lost++;
      for (let k = 1; k < numbers.length; k++) if (numbers[k]! < numbers[k - 1]!) outOfOrder++;
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
    kills,
    stopCode,
    byProtocol,
    pendingAtKills,
    stops,
    seconds: Math.round((Date.now() - started) / 100) / 10,
  };
}
