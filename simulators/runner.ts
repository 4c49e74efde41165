/**
 * What every simulator shares: the command line, creating devices, pacing a fleet at a rate,
 * live progress, and the final summary with acknowledgement latencies. A protocol only says how
 * one device sends one reading and learns it was acknowledged (`Transport`).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { Fleet, type SimulatedReading } from "./fleet.ts";

/** A device ready to send: resolves once Sluice (or the broker, for AMQP confirms) acknowledged. */
export type Send = (message: { readonly id: string; readonly reading: SimulatedReading }) => Promise<void>;

/** How one protocol connects a device and sends its readings. */
export interface Transport {
  readonly name: string;
  connect(device: { readonly id: string; readonly token: string }): Promise<Send>;
  close(): Promise<void>;
}

export interface SimOptions {
  readonly devices: number;
  /** Messages a second, all devices together. */
  readonly rate: number;
  /**
   * Seconds of sending (messages held by the in-flight limit may follow within a second): at a rate
   * the receiver does not keep up with, fewer than `rate × duration` go out.
   */
  readonly duration: number;
  /** Send exactly this many instead, at `rate` or as fast as acknowledged, however long it takes (a burst). */
  readonly count?: number;
  /** Where the devices send (protocol URL). */
  readonly url: string;
  /** Sluice's HTTP address (admin API, to create devices). */
  readonly adminUrl: string;
  readonly adminToken?: string;
  /** Device id → token, when devices are not created here. */
  readonly tokens?: Readonly<Record<string, string>>;
  readonly prefix: string;
  readonly seed: number;
  /** Unacknowledged messages one device may have at once. */
  readonly inflight: number;
  /** MQTT: publish on `<token>/<channel>/invoke` (an external broker) instead of logging in with the token. */
  readonly tokenInTopic?: boolean;
}

/** Counts so far, and at the end. */
export interface SimCounts {
  sent: number;
  acked: number;
  errors: number;
  seconds: number;
}

/** The end of a run: counts, rate and acknowledgement latencies (ms). */
export interface SimReport extends SimCounts {
  /** Messages asked for: `rate × duration`, or `count`. */
  readonly asked: number;
  readonly rate: number;
  /** `performance.now()` when the first message went out (devices provisioned and connected by then). */
  readonly startedAt: number;
  readonly latency: { readonly p50: number; readonly p95: number; readonly p99: number; readonly max: number };
}

export interface SimHooks {
  /** About once a second. */
  readonly onProgress?: (counts: Readonly<SimCounts>) => void;
  /** Right before the first message goes out (devices provisioned and connected). */
  readonly onStart?: () => void;
  readonly log?: (line: string) => void;
}

const TICK_MS = 10;
const DRAIN_MS = 15_000;
/** After `duration`, messages that were due but held by the in-flight limit may still go out this long. */
const CATCH_UP_MS = 1000;

/** Runs a fleet at the rate for the duration, then waits for the acknowledgements. */
export async function runSim(options: SimOptions, transport: Transport, hooks: SimHooks = {}): Promise<SimReport> {
  const log = hooks.log ?? (() => {});
  const fleet = new Fleet({ size: options.devices, seed: options.seed, prefix: options.prefix });
  const tokens = await provisionDevices(fleet.pumps.map((p) => p.id), options, log);
  const senders = await Promise.all(fleet.pumps.map((p) => transport.connect({ id: p.id, token: tokens[p.id]! })));
  const counts: SimCounts = { sent: 0, acked: 0, errors: 0, seconds: 0 };
  const latencies: number[] = [];
  const sent = senders.map(() => 0), inflight = senders.map(() => 0);
  const total = options.count ?? Math.round(options.rate * options.duration);
  const perDevice = (i: number) => Math.floor(total / senders.length) + (i < total % senders.length ? 1 : 0);
  hooks.onStart?.();
  const start = performance.now();
  // Message ids are unique per run: a second run must not be taken for resends of the first.
  const run = Date.now().toString(36);
  let lastProgress = start;
  /** When the last message went out, or the sending window closed (seconds from the start). */
  let stoppedAt: number | undefined;
  try {
    for (;;) {
      const elapsed = (performance.now() - start) / 1000;
      counts.seconds = elapsed;
      const due = stoppedAt !== undefined
        ? counts.sent
        : !options.count && elapsed >= options.duration
        ? total
        : Math.min(total, Math.floor(elapsed * options.rate));
      // Round-robin over devices up to what is due by now, each within its in-flight limit; a round in which
      // every device is at its limit ends the tick (a saturated fleet must not spin through rounds).
      for (let progress = true; progress && counts.sent < due;) {
        progress = false;
        for (let i = 0; i < senders.length && counts.sent < due; i++) {
          if (sent[i]! >= perDevice(i) || inflight[i]! >= options.inflight) continue;
          progress = true;
          const n = sent[i]!++;
          inflight[i]!++;
          counts.sent++;
          const t0 = performance.now();
          senders[i]!({ id: `${fleet.pumps[i]!.id}-${run}-${n}`, reading: fleet.next(i, Date.now()) }).then(
            () => (counts.acked++, latencies.push(performance.now() - t0)),
            () => counts.errors++,
          ).finally(() => inflight[i]!--);
        }
      }
      if (performance.now() - lastProgress >= 1000) {
        lastProgress = performance.now();
        hooks.onProgress?.(counts);
      }
      const windowOver = !options.count && elapsed >= options.duration + CATCH_UP_MS / 1000;
      if (stoppedAt === undefined && (counts.sent >= total || windowOver)) {
        stoppedAt = elapsed;
        if (counts.sent < total) {
          log(`Sent ${counts.sent} of ${total} in ${options.duration} s: the rate was not reached (in-flight limits)`);
        }
      }
      if (stoppedAt !== undefined && counts.acked + counts.errors >= counts.sent) break;
      if (stoppedAt !== undefined && elapsed > stoppedAt + DRAIN_MS / 1000) {
        const missing = counts.sent - counts.acked - counts.errors;
        counts.errors += missing;
        log(`Gave up waiting for ${missing} acknowledgement(s)`);
        break;
      }
      await new Promise((r) => setTimeout(r, TICK_MS));
    }
  } finally {
    await transport.close();
  }
  counts.seconds = (performance.now() - start) / 1000;
  latencies.sort((a, b) => a - b);
  const pct = (p: number) => round(latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))] ?? 0);
  return {
    ...counts,
    asked: total,
    startedAt: start,
    rate: Math.round(counts.acked / Math.max(counts.seconds, 0.001)),
    latency: { p50: pct(0.5), p95: pct(0.95), p99: pct(0.99), max: round(latencies.at(-1) ?? 0) },
  };
}

/** Creates the devices through the admin API (again, if they exist: a token is shown only once), or takes the given tokens. */
export async function provisionDevices(
  ids: readonly string[],
  options: Pick<SimOptions, "adminUrl" | "adminToken" | "tokens">,
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
  const base = options.adminUrl.replace(/\/$/, "");
  const headers = { authorization: `Bearer ${options.adminToken}`, "content-type": "application/json" };
  const create = (id: string) =>
    fetch(`${base}/admin/devices`, { method: "POST", headers, body: JSON.stringify({ id }) }).catch((err) => {
      throw new Error(`Cannot reach Sluice's admin API at ${base} (--admin-url): ${err.message}`);
    });
  const out: Record<string, string> = {};
  for (let i = 0; i < ids.length; i += 50) {
    await Promise.all(
      ids.slice(i, i + 50).map(async (id) => {
        let res = await create(id);
        if (res.status === 409) {
          await res.body?.cancel();
          await (await fetch(`${base}/admin/devices/${encodeURIComponent(id)}`, { method: "DELETE", headers })).body
            ?.cancel();
          res = await create(id);
        }
        if (res.status !== 201) throw new Error(`Creating device ${id}: ${res.status} ${await res.text()}`);
        out[id] = (await res.json()).token;
      }),
    );
  }
  log(`Created ${ids.length} device(s) through ${base}`);
  return out;
}

/** Reads the shared flags; `defaults.url` is the protocol's usual address. */
export async function parseSimArgs(args: readonly string[], defaults: { url: string; rate?: number }): Promise<
  SimOptions | null
> {
  const { values } = parseArgs({
    args: [...args],
    options: {
      devices: { type: "string", default: "10" },
      rate: { type: "string", default: String(defaults.rate ?? 10) },
      duration: { type: "string", default: "10" },
      url: { type: "string", default: defaults.url },
      "admin-url": { type: "string", default: "http://localhost:8000" },
      "admin-token": { type: "string" },
      tokens: { type: "string" },
      prefix: { type: "string", default: "sim" },
      seed: { type: "string", default: "1" },
      inflight: { type: "string", default: "8" },
      "token-in-topic": { type: "boolean", default: false },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help) return null;
  const number = (name: string, v: string | undefined, min: number): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < min) throw new Error(`--${name} must be a number ≥ ${min}, got "${v}"`);
    return n;
  };
  return {
    devices: number("devices", values.devices, 1),
    rate: number("rate", values.rate, 0.01),
    duration: number("duration", values.duration, 0.1),
    url: values.url!,
    adminUrl: values["admin-url"]!,
    adminToken: values["admin-token"] ?? Deno.env.get("ADMIN_TOKEN"),
    tokens: values.tokens ? JSON.parse(await Deno.readTextFile(values.tokens)) : undefined,
    prefix: values.prefix!,
    seed: number("seed", values.seed, 0),
    inflight: number("inflight", values.inflight, 1),
    tokenInTopic: values["token-in-topic"],
  };
}

/** The usage line every simulator shares. */
export function usage(task: string, url: string): string {
  return `deno task ${task} [--devices N (10)] [--rate R msg/s, all devices (10)] [--duration S of sending (10)]
  [--url ${url}] [--admin-url http://localhost:8000 --admin-token TOKEN | --tokens file.json]
  [--inflight K unacknowledged per device (8)] [--prefix sim] [--seed N]${
    task === "sim:mqtt" ? " [--token-in-topic]" : ""
  }
Devices <prefix>-1 … are created through the admin API (existing ones are revoked and created again).
A device with K unacknowledged messages waits: if Sluice acknowledges slower than R, fewer than R × S go out.${
    task === "sim:mqtt"
      ? "\n--token-in-topic: publish on <token>/blog_queuing/invoke without logging in (an external broker, MQTT_URL)."
      : ""
  }`;
}

/** A simulator's `main`: flags, live progress on stderr, summary on stdout, exit 1 if anything failed. */
export async function simMain(task: string, defaultUrl: string, transport: (options: SimOptions) => Transport) {
  try {
    const options = await parseSimArgs(Deno.args, { url: defaultUrl });
    if (!options) return console.log(usage(task, defaultUrl));
    console.error(
      `${task}: ${options.devices} device(s), ${options.rate} msg/s for ${options.duration} s → ${options.url}`,
    );
    const interactive = Deno.stderr.isTerminal();
    const report = await runSim(options, transport(options), {
      log: (line) => console.error(line),
      onProgress: (c) => {
        const line = `  ${c.seconds.toFixed(0)} s  sent ${c.sent}  acked ${c.acked}  errors ${c.errors}  ` +
          `in flight ${c.sent - c.acked - c.errors}  (${Math.round(c.acked / Math.max(c.seconds, 0.001))}/s)`;
        if (interactive) Deno.stderr.writeSync(new TextEncoder().encode(`\r\x1b[K${line}`));
        else console.error(line);
      },
    });
    if (interactive) console.error("");
    console.log(
      `sent ${report.sent}${report.sent < report.asked ? ` of ${report.asked} asked` : ""}, acked ${report.acked}, ` +
        `errors ${report.errors} in ${report.seconds.toFixed(1)} s ` +
        `(${report.rate} acked msg/s); ack latency p50 ${report.latency.p50} ms, p95 ${report.latency.p95} ms, ` +
        `p99 ${report.latency.p99} ms`,
    );
    if (report.acked !== report.sent) Deno.exitCode = 1;
  } catch (err) {
    console.error(`${task}: ${err instanceof Error ? err.message : String(err)}`);
    Deno.exit(1);
  }
}

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}
