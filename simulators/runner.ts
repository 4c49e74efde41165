/**
 * Running a fleet at a rate: creating its devices (or taking their tokens), pacing every device's
 * share over the run, and counting acknowledgements, errors by cause and latencies. A protocol only
 * says how one device sends one reading and learns it was acknowledged (`Transport`); the command
 * line is in `cli.ts`.
 *
 * @module
 */
import { ErrorCauses, failureMessage } from "./error_causes.ts";
import { Fleet, type SimulatedReading } from "./fleet.ts";
import { readRefusals, refusalReport, unseenNote } from "./refusals.ts";

/** A device ready to send: resolves once Sluice (or the broker, for AMQP confirms) acknowledged. */
export type Send = (message: { readonly id: string; readonly reading: SimulatedReading }) => Promise<void>;

/** How one protocol connects a device and sends its readings. */
export interface Transport {
  /** Sluice's name for the protocol (`http`, `mqtt`, `amqp`), as in its `/metrics` labels. */
  readonly name: string;
  /** Fails with one line when the protocol's server cannot be reached: run before any device is revoked. */
  check?(): Promise<void>;
  /** `log` reports what the caller should know as it happens (a lost connection), once per device and cause. */
  connect(device: { readonly id: string; readonly token: string }, log: (line: string) => void): Promise<Send>;
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
  /** Sluice's HTTP address (admin API to create devices, `/metrics` for refusals). */
  readonly adminUrl: string;
  /** Creates the devices (unless `tokens` are given) and reads Sluice's refusals from `/metrics`. */
  readonly adminToken?: string;
  /** Device id → token: these devices are used as they are (never revoked or created here). */
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
  /** Percentiles of the acknowledged messages; all 0 when none was (`acked` is 0). */
  readonly latency: { readonly p50: number; readonly p95: number; readonly p99: number; readonly max: number };
  /** Failed sends by cause (`HTTP 429 rate_limited`, `not connected: …`), the most frequent first. */
  readonly errorCauses: readonly (readonly [cause: string, count: number])[];
  /**
   * What Sluice counted as refused for this protocol during the run (its `/metrics`), by code, the most
   * frequent first; MQTT 3.1.1 acknowledges some of those. Null when `/metrics` was not read (no admin token,
   * or it could not be).
   */
  readonly refused: readonly (readonly [code: string, count: number])[] | null;
  /** Why `refused` is null although an admin token was given, or may be short (Sluice restarted meanwhile). */
  readonly refusedNote?: string;
  /**
   * Set (an error) when messages were acknowledged but Sluice's `/metrics` counted none of them, accepted or refused:
   * the acknowledgements came from a broker Sluice does not read.
   */
  readonly unseen?: string;
  /** Stopped early by `hooks.signal`. */
  readonly interrupted: boolean;
}

export interface SimHooks {
  /** About once a second. */
  readonly onProgress?: (counts: Readonly<SimCounts>) => void;
  /** Right before the first message goes out (devices provisioned and connected). */
  readonly onStart?: () => void;
  readonly log?: (line: string) => void;
  /** Stops sending; what is in flight gets `INTERRUPT_DRAIN_MS` to be acknowledged. */
  readonly signal?: AbortSignal;
}

const TICK_MS = 10;
const DRAIN_MS = 15_000;
/** After an interrupt, outstanding acknowledgements are waited for this long. */
export const INTERRUPT_DRAIN_MS = 2000;
/** After `duration`, messages that were due but held by the in-flight limit may still go out this long. */
const CATCH_UP_MS = 1000;
/**
 * How long Sluice's accepted count is waited for when it did not grow by the end of a run: through a broker (AMQP, an
 * external MQTT broker) Sluice takes messages after their acknowledgement.
 */
const UNSEEN_WAIT_MS = 5000;

/** Runs a fleet at the rate for the duration, then waits for the acknowledgements. */
export async function runSim(options: SimOptions, transport: Transport, hooks: SimHooks = {}): Promise<SimReport> {
  const log = hooks.log ?? (() => {});
  const fleet = new Fleet({ size: options.devices, seed: options.seed, prefix: options.prefix });
  await transport.check?.();
  const tokens = await provisionDevices(fleet.pumps.map((p) => p.id), options, log, hooks.signal);
  const senders = await Promise.all(
    fleet.pumps.map((p) => transport.connect({ id: p.id, token: tokens[p.id]! }, log)),
  );
  const { adminUrl, adminToken } = options;
  const readRefused = () => adminToken ? readRefusals(adminUrl, adminToken, transport.name) : Promise.resolve(null);
  const refusedBefore = await readRefused();
  const counts: SimCounts = { sent: 0, acked: 0, errors: 0, seconds: 0 };
  const causes = new ErrorCauses();
  const latencies: number[] = [];
  const sent = senders.map(() => 0), inflight = senders.map(() => 0);
  const total = options.count ?? Math.round(options.rate * options.duration);
  const perDevice = (i: number) => Math.floor(total / senders.length) + (i < total % senders.length ? 1 : 0);
  /** False once the run is over: a late answer must not change the counts (given-up ones are errors already). */
  let counting = true;
  const fail = (err: unknown, times = 1) => {
    counts.errors += times;
    const cause = causes.add(err, times);
    if (cause) log(`New error: ${cause}`);
  };
  hooks.onStart?.();
  const start = performance.now();
  // Message ids are unique per run: a second run must not be taken for resends of the first.
  const run = Date.now().toString(36);
  let lastProgress = start;
  /** The device the next round starts at: the rotation goes on across ticks. */
  let cursor = 0;
  /** When the last message went out, or the sending window closed (seconds from the start). */
  let stoppedAt: number | undefined;
  let giveUpAt = Infinity;
  let interrupted = false;
  try {
    for (;;) {
      const elapsed = (performance.now() - start) / 1000;
      counts.seconds = elapsed;
      if (hooks.signal?.aborted && !interrupted) {
        interrupted = true;
        stoppedAt ??= elapsed;
        giveUpAt = Math.min(giveUpAt, elapsed + INTERRUPT_DRAIN_MS / 1000);
      }
      const due = stoppedAt !== undefined
        ? counts.sent
        : !options.count && elapsed >= options.duration
        ? total
        : Math.min(total, Math.floor(elapsed * options.rate));
      // Round-robin over devices up to what is due by now, each within its in-flight limit, going on from where
      // the last tick stopped: with fewer messages due a tick than devices, every device still sends its share
      // all along the run (not the first devices first). Once a whole round of devices in a row could not send,
      // the tick ends (a saturated fleet must not spin).
      for (let idle = 0; idle < senders.length && counts.sent < due && !hooks.signal?.aborted;) {
        const i = cursor;
        cursor = (cursor + 1) % senders.length;
        if (sent[i]! >= perDevice(i) || inflight[i]! >= options.inflight) {
          idle++;
          continue;
        }
        idle = 0;
        const n = sent[i]!++;
        inflight[i]!++;
        counts.sent++;
        const t0 = performance.now();
        senders[i]!({ id: `${fleet.pumps[i]!.id}-${run}-${n}`, reading: fleet.next(i, Date.now()) }).then(
          () => counting && (counts.acked++, latencies.push(performance.now() - t0)),
          (err) => counting && fail(err),
        ).finally(() => inflight[i]!--);
      }
      if (performance.now() - lastProgress >= 1000) {
        lastProgress = performance.now();
        hooks.onProgress?.(counts);
      }
      const windowOver = !options.count && elapsed >= options.duration + CATCH_UP_MS / 1000;
      if (stoppedAt === undefined && (counts.sent >= total || windowOver)) {
        stoppedAt = elapsed;
        if (counts.sent < total) {
          log(
            `Sent ${counts.sent} of ${total} in ${options.duration} s: the rate was not reached ` +
              (counts.errors > 0
                ? `(${counts.errors} error(s) so far: see the summary)`
                : "(in-flight limits: acknowledgements came slower than the rate)"),
          );
        }
      }
      if (stoppedAt !== undefined) giveUpAt = Math.min(giveUpAt, stoppedAt + DRAIN_MS / 1000);
      if (stoppedAt !== undefined && counts.acked + counts.errors >= counts.sent) break;
      if (elapsed > giveUpAt) {
        const missing = counts.sent - counts.acked - counts.errors;
        fail(
          new Error(
            interrupted ? "no acknowledgement before the interrupt" : `no acknowledgement within ${DRAIN_MS / 1000} s`,
          ),
          missing,
        );
        log(`Gave up waiting for ${missing} acknowledgement(s)`);
        break;
      }
      await new Promise((r) => setTimeout(r, TICK_MS));
    }
  } finally {
    counting = false;
    await transport.close();
  }
  counts.seconds = (performance.now() - start) / 1000;
  let refusedAfter = await readRefused();
  for (
    const until = performance.now() + (interrupted ? 0 : UNSEEN_WAIT_MS);
    // Ctrl-C: no wait past its 2 s
    unseenNote(refusedBefore, refusedAfter, counts.acked, transport.name) && performance.now() < until;
  ) {
    await new Promise((r) => setTimeout(r, 250));
    refusedAfter = await readRefused();
  }
  const unseen = unseenNote(refusedBefore, refusedAfter, counts.acked, transport.name);
  const refusals = adminToken ? refusalReport(refusedBefore, refusedAfter) : { refused: null };
  latencies.sort((a, b) => a - b);
  const pct = (p: number) => round(latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))] ?? 0);
  return {
    ...counts,
    asked: total,
    startedAt: start,
    rate: Math.round(counts.acked / Math.max(counts.seconds, 0.001)),
    latency: { p50: pct(0.5), p95: pct(0.95), p99: pct(0.99), max: round(latencies.at(-1) ?? 0) },
    errorCauses: causes.top(),
    refused: refusals.refused,
    ...(refusals.note ? { refusedNote: refusals.note } : {}),
    ...(unseen ? { unseen } : {}),
    interrupted,
  };
}

/**
 * The devices' tokens: the given ones (`tokens`: those devices are used as they are, never revoked), or
 * tokens of devices created through the admin API (revoked and created again if they exist: a token is
 * shown only once).
 */
export async function provisionDevices(
  ids: readonly string[],
  options: Pick<SimOptions, "adminUrl" | "adminToken" | "tokens">,
  log: (line: string) => void,
  signal?: AbortSignal,
): Promise<Record<string, string>> {
  if (options.tokens) {
    const tokens = options.tokens;
    const missing = ids.filter((id) => !tokens[id]);
    if (missing.length > 0) {
      throw new Error(
        `The tokens file (--tokens) has no token for ${missing.slice(0, 3).join(", ")}` +
          `${missing.length > 3 ? ` and ${missing.length - 3} more` : ""}: ` +
          `it needs ${ids.length === 1 ? ids[0] : `${ids[0]} … ${ids.at(-1)}`} (--devices, --prefix)`,
      );
    }
    return { ...tokens };
  }
  if (!options.adminToken) {
    throw new Error("No device tokens: give --admin-token (or set ADMIN_TOKEN) to create the devices, or --tokens");
  }
  const base = options.adminUrl.replace(/\/$/, "");
  const headers = { authorization: `Bearer ${options.adminToken}`, "content-type": "application/json" };
  const create = (id: string) =>
    fetch(`${base}/admin/devices`, { method: "POST", headers, body: JSON.stringify({ id }) }).catch((err) => {
      throw new Error(`Cannot reach Sluice's admin API at ${base} (--admin-url): ${failureMessage(err)}`);
    });
  const out: Record<string, string> = {};
  let revoked = 0;
  for (let i = 0; i < ids.length; i += 50) {
    // Interrupted (Ctrl-C): no more devices are revoked or created, and nothing is sent.
    if (signal?.aborted) throw new Error(`Interrupted while creating devices (${i} of ${ids.length} created)`);
    await Promise.all(
      ids.slice(i, i + 50).map(async (id) => {
        let res = await create(id);
        if (res.status === 409) {
          await res.body?.cancel();
          await (await fetch(`${base}/admin/devices/${encodeURIComponent(id)}`, { method: "DELETE", headers })).body
            ?.cancel();
          revoked++;
          res = await create(id);
        }
        if (res.status !== 201) throw new Error(`Creating device ${id}: ${res.status} ${await res.text()}`);
        out[id] = (await res.json()).token;
      }),
    );
  }
  log(
    `Created ${ids.length} device(s) through ${base}` +
      (revoked > 0 ? ` (${revoked} existed: revoked and created again)` : ""),
  );
  return out;
}

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}
