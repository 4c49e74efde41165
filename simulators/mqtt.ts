/**
 * `deno task sim:mqtt`: a fleet of pumps publishing the seed's CSV readings over MQTT (QoS 1).
 *
 * ```sh
 * deno task sim:mqtt --devices 20 --rate 5 --duration 30 \
 *   --url mqtt://127.0.0.1:1883 --admin-url http://localhost:8000 --admin-token sla_…
 * ```
 *
 * `--rate` is messages a second per device. With `--admin-token`, the devices (`sim-1` …) are
 * created through the admin API (an existing one is revoked and created again, since a token is
 * shown only once); otherwise `--tokens file.json` gives `{ "<device id>": "<token>" }`. Devices
 * connect with username = id and password = token and publish on `blog_queuing/invoke`; with
 * `--token-in-topic` (external broker, anonymous connect) they connect without credentials and
 * publish on `<token>/blog_queuing/invoke`.
 *
 * @module
 */
import { parseArgs } from "node:util";
import mqtt, { type MqttClient } from "mqtt";
import { Fleet, invokePayload } from "./fleet.ts";

export interface MqttSimOptions {
  readonly url: string;
  readonly devices: number;
  /** Messages a second, per device. */
  readonly rate: number;
  /** Seconds of publishing. */
  readonly duration: number;
  readonly adminUrl?: string;
  readonly adminToken?: string;
  /** Device id → token, when devices are not created here. */
  readonly tokens?: Readonly<Record<string, string>>;
  readonly prefix?: string;
  readonly seed?: number;
  readonly qos?: 0 | 1 | 2;
  /** Unacknowledged publishes a device may have at once. */
  readonly inflight?: number;
  readonly tokenInTopic?: boolean;
  readonly channel?: string;
}

/** Counts so far (and at the end). */
export interface MqttSimCounts {
  sent: number;
  acked: number;
  /** Publishes that got no acknowledgement (connection refused or lost). */
  refused: number;
  seconds: number;
}

export interface MqttSimHooks {
  /** Called about once a second while the run goes on. */
  readonly onProgress?: (counts: Readonly<MqttSimCounts>) => void;
  readonly log?: (line: string) => void;
  readonly now?: () => number;
}

const TICK_MS = 20;
const DRAIN_MS = 10_000;

/** Runs the simulation; resolves with the final counts once every publish is answered (or given up). */
export async function runMqttSim(options: MqttSimOptions, hooks: MqttSimHooks = {}): Promise<MqttSimCounts> {
  const now = hooks.now ?? Date.now;
  const log = hooks.log ?? (() => {});
  const fleet = new Fleet({ size: options.devices, seed: options.seed ?? 1, prefix: options.prefix ?? "sim" });
  const tokens = await deviceTokens(fleet.pumps.map((p) => p.id), options, log);
  const qos = options.qos ?? 1;
  const maxInflight = options.inflight ?? 10;
  const channel = options.channel ?? "blog_queuing";
  const perDevice = Math.round(options.rate * options.duration);
  const counts: MqttSimCounts = { sent: 0, acked: 0, refused: 0, seconds: 0 };
  const clients: MqttClient[] = [];
  try {
    for (const pump of fleet.pumps) {
      const token = tokens[pump.id]!;
      try {
        clients.push(
          await mqtt.connectAsync(options.url, {
            clientId: `${pump.id}-sim`,
            reconnectPeriod: 1000,
            connectTimeout: 10_000,
            ...(options.tokenInTopic ? {} : { username: pump.id, password: token }),
          }),
        );
      } catch (err) {
        throw new Error(`Device ${pump.id} cannot connect: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    const topics = fleet.pumps.map((p) =>
      options.tokenInTopic ? `${tokens[p.id]}/${channel}/invoke` : `${channel}/invoke`
    );
    const sent = fleet.pumps.map(() => 0);
    const inflight = fleet.pumps.map(() => 0);
    const start = now();
    let lastProgress = start;
    const answered = () => counts.acked + counts.refused;
    while (true) {
      const elapsed = (now() - start) / 1000;
      counts.seconds = elapsed;
      for (let i = 0; i < clients.length; i++) {
        const due = Math.min(perDevice, Math.floor(elapsed * options.rate)) - sent[i]!;
        for (let k = 0; k < due && inflight[i]! < maxInflight; k++) {
          sent[i]!++;
          inflight[i]!++;
          counts.sent++;
          const payload = invokePayload(fleet.next(i, now()));
          clients[i]!.publish(topics[i]!, payload, { qos }, (err) => {
            inflight[i]!--;
            if (err) counts.refused++;
            else counts.acked++;
          });
        }
      }
      if (now() - lastProgress >= 1000) {
        lastProgress = now();
        hooks.onProgress?.(counts);
      }
      const allSent = sent.every((n) => n >= perDevice);
      if (allSent && answered() >= counts.sent) break;
      if (allSent && elapsed > options.duration + DRAIN_MS / 1000) {
        const missing = counts.sent - answered();
        counts.refused += missing;
        log(`Gave up waiting for ${missing} acknowledgement(s)`);
        break;
      }
      await new Promise((r) => setTimeout(r, TICK_MS));
    }
    counts.seconds = (now() - start) / 1000;
    return counts;
  } finally {
    await Promise.all(clients.map((c) => c.endAsync(true).catch(() => {})));
  }
}

/** Creates the devices through the admin API, or takes their tokens from the options. */
async function deviceTokens(
  ids: readonly string[],
  options: MqttSimOptions,
  log: (line: string) => void,
): Promise<Record<string, string>> {
  if (!options.adminToken) {
    const tokens = options.tokens ?? {};
    const missing = ids.filter((id) => !tokens[id]);
    if (missing.length > 0) {
      throw new Error(`No token for ${missing.slice(0, 3).join(", ")}: give --admin-token, or --tokens file.json`);
    }
    return { ...tokens };
  }
  const base = (options.adminUrl ?? "http://localhost:8000").replace(/\/$/, "");
  const headers = { authorization: `Bearer ${options.adminToken}`, "content-type": "application/json" };
  const created = await Promise.all(ids.map(async (id) => {
    let res = await fetch(`${base}/admin/devices`, { method: "POST", headers, body: JSON.stringify({ id }) });
    if (res.status === 409) {
      await res.body?.cancel();
      const del = await fetch(`${base}/admin/devices/${encodeURIComponent(id)}`, { method: "DELETE", headers });
      await del.body?.cancel();
      res = await fetch(`${base}/admin/devices`, { method: "POST", headers, body: JSON.stringify({ id }) });
    }
    if (res.status !== 201) throw new Error(`Creating device ${id}: ${res.status} ${await res.text()}`);
    return [id, (await res.json()).token as string] as const;
  }));
  log(`Created ${ids.length} device(s) through ${base} (existing ones were revoked and created again)`);
  return Object.fromEntries(created);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      devices: { type: "string", default: "10" },
      rate: { type: "string", default: "1" },
      duration: { type: "string", default: "10" },
      url: { type: "string", default: "mqtt://127.0.0.1:1883" },
      "admin-url": { type: "string", default: "http://localhost:8000" },
      "admin-token": { type: "string" },
      tokens: { type: "string" },
      prefix: { type: "string", default: "sim" },
      seed: { type: "string", default: "1" },
      qos: { type: "string", default: "1" },
      inflight: { type: "string", default: "10" },
      "token-in-topic": { type: "boolean", default: false },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help) {
    console.log(
      "deno task sim:mqtt [--devices N] [--rate R per device/s] [--duration S] [--url mqtt://…|ws://…/mqtt]\n" +
        "  [--admin-url URL --admin-token TOKEN | --tokens file.json] [--token-in-topic] [--qos 0|1|2]\n" +
        "  [--inflight K] [--prefix sim] [--seed N]",
    );
    return;
  }
  const number = (name: string, v: string | undefined, min: number): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < min) throw new Error(`--${name} must be a number ≥ ${min}, got "${v}"`);
    return n;
  };
  const options: MqttSimOptions = {
    url: values.url!,
    devices: number("devices", values.devices, 1),
    rate: number("rate", values.rate, 0.01),
    duration: number("duration", values.duration, 0.1),
    adminUrl: values["admin-url"],
    adminToken: values["admin-token"] ?? Deno.env.get("SLUICE_ADMIN_TOKEN"),
    tokens: values.tokens ? JSON.parse(await Deno.readTextFile(values.tokens)) : undefined,
    prefix: values.prefix,
    seed: number("seed", values.seed, 0),
    qos: number("qos", values.qos, 0) as 0 | 1 | 2,
    inflight: number("inflight", values.inflight, 1),
    tokenInTopic: values["token-in-topic"],
  };
  console.error(
    `sim:mqtt: ${options.devices} device(s) × ${options.rate} msg/s for ${options.duration} s on ${options.url}`,
  );
  const counts = await runMqttSim(options, {
    log: (line) => console.error(line),
    onProgress: (c) =>
      Deno.stderr.writeSync(
        new TextEncoder().encode(
          `\r  ${c.seconds.toFixed(0)} s  sent ${c.sent}  acked ${c.acked}  refused ${c.refused}  in flight ${
            c.sent - c.acked - c.refused
          }   `,
        ),
      ),
  });
  console.error("");
  console.log(
    `sent ${counts.sent}, acked ${counts.acked}, refused ${counts.refused} in ${counts.seconds.toFixed(1)} s ` +
      `(${(counts.acked / Math.max(counts.seconds, 0.001)).toFixed(0)} acked msg/s)`,
  );
  if (counts.acked !== counts.sent) Deno.exitCode = 1;
}

if (import.meta.main) {
  try {
    await main();
  } catch (err) {
    console.error(`sim:mqtt: ${err instanceof Error ? err.message : String(err)}`);
    Deno.exit(1);
  }
}
