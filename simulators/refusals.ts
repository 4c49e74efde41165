/**
 * What Sluice refused during a run, from its `/metrics`: an MQTT 3.1.1 device gets a PUBACK for a
 * message Sluice dropped (over the rate limit, say), so the simulator's own count would call it
 * acknowledged. `sluice_ingest_refused_total{protocol,code}` before and after tells.
 *
 * @module
 */

const REFUSED = "sluice_ingest_refused_total";

/** Sluice's refusal counters for one protocol, by code, what its adapter accepted, and when its process started. */
export interface Refusals {
  readonly byCode: Map<string, number>;
  /**
   * `sluice_<protocol>_accepted_total` (the MQTT and AMQP adapters' messages taken since start); null without it
   * (HTTP has none: its answer is Sluice's own).
   */
  readonly accepted?: number | null;
  /** `process_start_time_seconds` (null from a Sluice that does not give it). */
  readonly startedAt: number | null;
}

/** What Sluice refused over one protocol during a run; `note` says why the count may be short or missing. */
export interface RefusalReport {
  readonly refused: [code: string, count: number][] | null;
  readonly note?: string;
}

/** Sluice's refusal counters for one protocol; null when `/metrics` cannot be read. */
export async function readRefusals(adminUrl: string, token: string, protocol: string): Promise<Refusals | null> {
  try {
    const res = await fetch(`${adminUrl.replace(/\/$/, "")}/metrics`, {
      headers: { authorization: `Bearer ${token}` },
      signal: AbortSignal.timeout(5000),
    });
    if (!res.ok) {
      await res.body?.cancel();
      return null;
    }
    const text = await res.text();
    const started = /^process_start_time_seconds (\d+)/m.exec(text);
    return {
      byCode: parseRefusals(text, protocol),
      accepted: parseAccepted(text, protocol),
      startedAt: started ? Number(started[1]) : null,
    };
  } catch {
    return null;
  }
}

/** The refusals between two readings of a run, or why they cannot be told. */
export function refusalReport(before: Refusals | null, after: Refusals | null): RefusalReport {
  if (!before || !after) {
    return {
      refused: null,
      note: `Sluice's refusals were not checked: its /metrics could not be read at the ${
        before ? "end" : "start"
      } of the run (over MQTT 3.1.1 a message Sluice drops is still acknowledged)`,
    };
  }
  if (before.startedAt !== after.startedAt) {
    return {
      refused: refusalsBetween(new Map(), after.byCode),
      note: "Sluice restarted during the run: only the refusals since its restart are counted",
    };
  }
  return { refused: refusalsBetween(before.byCode, after.byCode) };
}

/** `sluice_ingest_refused_total{protocol="<protocol>",code="…"} N` lines of Prometheus text, by code. */
export function parseRefusals(text: string, protocol: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (!line.startsWith(`${REFUSED}{`)) continue;
    const match = /^[^{]+\{(.*)\}\s+(\S+)/.exec(line);
    if (!match) continue;
    const labels = new Map([...match[1]!.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1]!, m[2]!]));
    const value = Number(match[2]);
    if (labels.get("protocol") !== protocol || !Number.isFinite(value)) continue;
    const code = labels.get("code") ?? "unknown";
    out.set(code, (out.get(code) ?? 0) + value);
  }
  return out;
}

/** The refusals counted between two readings, by code (only codes that grew), the most frequent first. */
export function refusalsBetween(
  before: ReadonlyMap<string, number>,
  after: ReadonlyMap<string, number>,
): [code: string, count: number][] {
  return [...after]
    .map(([code, n]): [string, number] => [code, n - (before.get(code) ?? 0)])
    .filter(([, n]) => n > 0)
    .sort((a, b) => b[1] - a[1]);
}

/** The sum of `sluice_<protocol>_accepted_total` samples in Prometheus text; null when there is none. */
export function parseAccepted(text: string, protocol: string): number | null {
  const name = `sluice_${protocol}_accepted_total`;
  let out: number | null = null;
  for (const line of text.split("\n")) {
    const match = /^([a-z_]+)(?:\{[^}]*\})?\s+(\S+)/.exec(line);
    if (match?.[1] !== name || !Number.isFinite(Number(match[2]))) continue;
    out = (out ?? 0) + Number(match[2]);
  }
  return out;
}

/**
 * Why a run's acknowledgements may not have reached Sluice, or null: `acked` messages were acknowledged while
 * neither Sluice's accepted count nor its refusals for the protocol grew (the acknowledgements came from a broker
 * Sluice does not take messages from), or Sluice has no adapter for the protocol (MQTT and AMQP count what they accept;
 * no count: none). Null when it cannot be told (no `/metrics` reading; HTTP has no accepted count).
 */
export function unseenNote(
  before: Refusals | null,
  after: Refusals | null,
  acked: number,
  protocol: string,
): string | null {
  if (acked === 0 || !before || !after) return null;
  if (after.accepted == null) {
    if (protocol === "http") return null;
    const how = protocol === "amqp" ? "AMQP_URL" : "MQTT_PORT not off (the embedded broker) or MQTT_URL";
    return `Error: ${acked} message(s) were acknowledged, but the Sluice at --admin-url takes no ` +
      `${protocol.toUpperCase()} messages (its /metrics has no sluice_${protocol}_accepted_total): what acknowledged ` +
      `them (--url) is a broker Sluice does not read; start Sluice with ${how}`;
  }
  const restarted = before.startedAt !== after.startedAt;
  const accepted = after.accepted - (restarted ? 0 : before.accepted ?? 0);
  const refused = refusalsBetween(restarted ? new Map() : before.byCode, after.byCode).reduce(
    (sum, [, n]) => sum + n,
    0,
  );
  if (accepted > 0 || refused > 0) return null;
  return `Error: ${acked} message(s) were acknowledged, but Sluice took none: its /metrics ` +
    `(sluice_${protocol}_accepted_total, sluice_ingest_refused_total) did not grow during the run, so what ` +
    `acknowledged them (--url) is not where Sluice takes ${protocol.toUpperCase()} messages from`;
}
