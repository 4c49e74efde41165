/**
 * The simulators' command line: flags checked at the edge, live progress on stderr, the summary on
 * stdout (with the causes of errors and what Sluice refused), and Ctrl-C.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { z } from "zod";
import {
  INTERRUPT_DRAIN_MS,
  runSim,
  type SimCounts,
  type SimOptions,
  type SimReport,
  type Transport,
} from "./runner.ts";
import { withoutPassword } from "./urls.ts";

/** Causes of errors the summary lists; the others are counted in one line. */
const TOP_CAUSES = 5;
/** SIGINTs this close together are one Ctrl-C. */
const SAME_INTERRUPT_MS = 500;

const TokenFile = z.record(z.string(), z.string().min(1));

/** Reads the shared flags; `defaults.url` is the protocol's usual address. Null for `--help`. */
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
      "admin-url": { type: "string" },
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
  const number = (name: string, v: string | undefined, min: number, whole = false): number => {
    // Decimal only: Number() would also take "0x3", "1e3" or " 5".
    const n = /^\d+(\.\d+)?$/.test(v ?? "") ? Number(v) : NaN;
    if (!Number.isFinite(n) || n < min || (whole && !Number.isInteger(n))) {
      throw new Error(`--${name} must be ${whole ? "a whole number" : "a number"} ≥ ${min}, got "${v}"`);
    }
    return n;
  };
  const rate = number("rate", values.rate, 0.01);
  const duration = number("duration", values.duration, 0.1);
  if (Math.round(rate * duration) < 1) {
    throw new Error(`--rate ${rate} for --duration ${duration} s makes no message (${rate * duration} rounds to 0)`);
  }
  return {
    devices: number("devices", values.devices, 1, true),
    rate,
    duration,
    url: values.url!,
    adminUrl: values["admin-url"] ?? adminUrlOf(values.url!),
    adminToken: values["admin-token"] ?? Deno.env.get("ADMIN_TOKEN"),
    tokens: values.tokens === undefined ? undefined : await readTokens(values.tokens),
    prefix: values.prefix!,
    seed: number("seed", values.seed, 0, true),
    inflight: number("inflight", values.inflight, 1, true),
    tokenInTopic: values["token-in-topic"],
  };
}

/**
 * Where Sluice's admin API is when `--admin-url` is not given: the origin of an `http(s)://` or
 * `ws(s)://` `--url` (the same server), else the default port on this machine (a broker's URL).
 */
export function adminUrlOf(url: string): string {
  try {
    const u = new URL(url);
    if (u.protocol === "http:" || u.protocol === "https:") return u.origin;
    if (u.protocol === "ws:" || u.protocol === "wss:") return `${u.protocol === "ws:" ? "http" : "https"}://${u.host}`;
  } catch { /* not a URL: the protocol's own check says so */ }
  return "http://localhost:8000";
}

/** A `--tokens` file: a JSON object of device id → token. */
async function readTokens(path: string): Promise<Record<string, string>> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (err) {
    throw new Error(
      `--tokens ${path}: ${err instanceof Deno.errors.NotFound ? "no such file" : `cannot be read (${message(err)})`}`,
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new Error(`--tokens ${path}: not JSON`);
  }
  const parsed = TokenFile.safeParse(json);
  if (!parsed.success) {
    throw new Error(`--tokens ${path}: must be a JSON object of device id → token, like {"sim-1": "<token>"}`);
  }
  return parsed.data;
}

/** The usage text every simulator shares. */
export function usage(task: string, url: string): string {
  const mqtt = task === "sim:mqtt";
  return `deno task ${task} [--devices N (10)] [--rate R msg/s, all devices (10)] [--duration S of sending (10)]
  [--url ${url}] [--admin-url (--url's origin for http and ws, else http://localhost:8000)]
  [--admin-token TOKEN (ADMIN_TOKEN) | --tokens file.json] [--prefix sim] [--seed N (1)]
  [--inflight K unacknowledged per device (8)]${mqtt ? " [--token-in-topic]" : ""}
Devices <prefix>-1 … <prefix>-N are created through the admin API. Existing ones are revoked and created again
(a token is shown only once), so two simulators with the same --prefix revoke each other's devices: give each
its own --prefix. --tokens file.json ({"sim-1": "<token>", …}) takes those devices as they are instead, none
revoked or created; an admin token then only reads Sluice's /metrics.
Each device sends its share of R spread over the run; one with K unacknowledged messages waits, so if Sluice
acknowledges slower than R, fewer than R × S go out. The summary lists the errors by cause and, with the admin
token, the messages Sluice counted as refused (/metrics), acknowledged or not; it exits 1 if one failed or
was refused.
Ctrl-C stops sending, waits up to ${
    INTERRUPT_DRAIN_MS / 1000
  } s for acknowledgements, prints the summary and exits 130.${
    mqtt
      ? "\n--token-in-topic: publish on <token>/blog_queuing/invoke without logging in (an external broker, MQTT_URL)."
      : ""
  }`;
}

/** The live progress line: counts so far and the rate over the last interval (`last` is the previous line's). */
export function progressLine(c: Readonly<SimCounts>, last: { readonly acked: number; readonly seconds: number }) {
  const rate = Math.round((c.acked - last.acked) / Math.max(c.seconds - last.seconds, 0.001));
  return `  ${c.seconds.toFixed(0)} s  sent ${c.sent}  acked ${c.acked}  errors ${c.errors}  ` +
    `in flight ${c.sent - c.acked - c.errors}  (${rate} acked/s)`;
}

/** The summary of a run, a line each: counts and latencies, errors by cause, Sluice's refusals. */
export function summary(report: SimReport): string[] {
  const { latency } = report;
  const lines = [
    `sent ${report.sent}${report.sent < report.asked ? ` of ${report.asked} asked` : ""}, acked ${report.acked}, ` +
    `errors ${report.errors} in ${report.seconds.toFixed(1)} s (${report.rate} acked msg/s); ` +
    (report.acked > 0
      ? `ack latency p50 ${latency.p50} ms, p95 ${latency.p95} ms, p99 ${latency.p99} ms`
      : "no acknowledgements") +
    (report.interrupted ? " (interrupted)" : ""),
  ];
  if (report.errorCauses.length > 0) {
    lines.push("errors by cause:");
    for (const [cause, n] of report.errorCauses.slice(0, TOP_CAUSES)) lines.push(`  ${n} × ${cause}`);
    const others = report.errorCauses.slice(TOP_CAUSES);
    if (others.length > 0) {
      lines.push(`  ${others.reduce((sum, [, n]) => sum + n, 0)} × ${others.length} other cause(s)`);
    }
  }
  if (report.refused && report.refused.length > 0) {
    const total = report.refused.reduce((sum, [, n]) => sum + n, 0);
    // Read from /metrics: every client of the protocol counts, another simulator's refusals too.
    lines.push(
      `Sluice refused ${total} message(s) over this protocol during the run (all its clients): ${
        report.refused.map(([code, n]) => `${code} ${n}`).join(", ")
      }`,
    );
  }
  if (report.refusedNote) lines.push(report.refusedNote);
  if (report.unseen) lines.push(report.unseen);
  return lines;
}

/**
 * The exit code of a finished run: 130 when interrupted, 1 when a message failed, Sluice refused one, or Sluice took
 * none of the acknowledged ones.
 */
export function exitCode(report: SimReport): number {
  if (report.interrupted) return 130;
  return report.acked !== report.sent || (report.refused?.length ?? 0) > 0 || report.unseen ? 1 : 0;
}

/** A simulator's `main`: flags, live progress on stderr, summary on stdout, Ctrl-C, exit code. */
export async function simMain(task: string, defaultUrl: string, transport: (options: SimOptions) => Transport) {
  const interactive = Deno.stderr.isTerminal();
  const encoder = new TextEncoder();
  /** A line on stderr; in a terminal it replaces the progress line, which the next progress draws again. */
  const log = (line: string) => {
    if (interactive) Deno.stderr.writeSync(encoder.encode("\r\x1b[K"));
    console.error(line);
  };
  const stop = new AbortController();
  let interruptedAt = 0;
  const onInterrupt = () => {
    // `deno task` passes the terminal's Ctrl-C on to a child that got it already: the same one, not a second.
    if (stop.signal.aborted) return performance.now() - interruptedAt > SAME_INTERRUPT_MS && Deno.exit(130);
    interruptedAt = performance.now();
    log(`Interrupted: waiting up to ${INTERRUPT_DRAIN_MS / 1000} s for acknowledgements (Ctrl-C again quits now)`);
    stop.abort();
  };
  Deno.addSignalListener("SIGINT", onInterrupt);
  try {
    const options = await parseSimArgs(Deno.args, { url: defaultUrl });
    if (!options) return console.log(usage(task, defaultUrl));
    console.error(
      `${task}: ${options.devices} device(s), ${options.rate} msg/s for ${options.duration} s → ` +
        withoutPassword(options.url),
    );
    if (options.tokens && options.adminToken) {
      log(
        "--tokens given: those devices are used as they are (none revoked or created); the admin token only reads /metrics",
      );
    }
    let last = { acked: 0, seconds: 0 };
    const report = await runSim(options, transport(options), {
      log,
      signal: stop.signal,
      onProgress: (c) => {
        const line = progressLine(c, last);
        last = { acked: c.acked, seconds: c.seconds };
        if (interactive) Deno.stderr.writeSync(encoder.encode(`\r\x1b[K${line}`));
        else console.error(line);
      },
    });
    if (interactive) console.error("");
    for (const line of summary(report)) console.log(line);
    Deno.exitCode = exitCode(report);
  } catch (err) {
    log(`${task}: ${message(err)}`);
    Deno.exit(1);
  } finally {
    Deno.removeSignalListener("SIGINT", onInterrupt);
  }
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
