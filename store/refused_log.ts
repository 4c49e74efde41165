import type { Clock } from "../core/clock.ts";
import type { Protocol } from "../core/envelope.ts";
import type { Committer } from "./committer.ts";
import { ValidationError } from "../core/errors.ts";
import { redactTokens } from "../core/names.ts";
import { keys } from "./keys.ts";

/** A message refused at the edge: not processed, not retryable, kept for a week. */
export interface RefusedRecord {
  readonly at: string;
  readonly protocol: Protocol;
  /** The device it came from, when known. */
  readonly device: string | null;
  readonly channel?: string;
  /** Error code (`malformed_json`, `not_found`, `unauthorized` …) and its message. */
  readonly code: string;
  readonly reason: string;
  /** The start of the payload, as text (token-shaped text hidden: `sl_…`). */
  readonly preview: string;
  /** Refusals of the same device and reason in the second before this one, only counted. */
  readonly suppressed: number;
}

const RETENTION_MS = 7 * 24 * 3_600_000;

/**
 * The refused-messages log (`GET /admin/refused`): at most one record per protocol, device and reason per
 * second, the rest only counted, so a misbehaving device cannot flood KV. A reason is the message
 * without what it quotes and its numbers: an unknown script and an unknown channel are two reasons,
 * two unknown channels (or two JSON errors at different positions) one.
 */
export class RefusedLog {
  readonly #lastWrite = new Map<string, { at: number; suppressed: number }>();
  readonly counts = new Map<string, number>();
  #n = 0;

  constructor(private readonly kv: Deno.Kv, private readonly committer: Committer, private readonly clock: Clock) {}

  /** Records a refusal (or only counts it); never throws. */
  record(r: Omit<RefusedRecord, "at" | "suppressed" | "preview"> & { payload?: unknown }): void {
    const countKey = `${r.protocol}:${r.code}`;
    this.counts.set(countKey, (this.counts.get(countKey) ?? 0) + 1);
    const now = this.clock.now();
    const key = `${r.protocol}\u0000${r.device ?? "?"}\u0000${r.code}\u0000${reasonKind(r.reason)}`;
    const last = this.#lastWrite.get(key);
    if (last && now - last.at < 1000) {
      last.suppressed++;
      return;
    }
    this.#lastWrite.set(key, { at: now, suppressed: 0 });
    if (this.#lastWrite.size > 10_000) this.#prune(now);
    const { payload, ...rest } = r;
    const record: RefusedRecord = {
      ...rest,
      at: new Date(now).toISOString(),
      preview: preview(payload),
      suppressed: last?.suppressed ?? 0,
    };
    this.committer.write({
      // Zero-padded: a key's text sorts as its number ("10" after "9"), for the records of one millisecond.
      sets: [{ key: keys.refused(now, String(++this.#n).padStart(12, "0")), value: record, expireIn: RETENTION_MS }],
    }).catch(() => {});
  }

  /** The newest records first. */
  async list(limit = 100, after?: string): Promise<{ refused: RefusedRecord[]; next: string | null }> {
    const out: { record: RefusedRecord; key: Deno.KvKey }[] = [];
    // An empty `after` is the first page, as on the other lists.
    const from = after === undefined || after === "" ? null : /^(\d+)\.(\d+)$/.exec(after);
    if (after !== undefined && after !== "" && !from) {
      throw new ValidationError(`Invalid after "${after.slice(0, 40)}": use a "next" given here`);
    }
    const selector = from
      ? { prefix: keys.refusedAll(), end: keys.refused(Number(from[1]), from[2]!) }
      : { prefix: keys.refusedAll() };
    for await (const e of this.kv.list<RefusedRecord>(selector, { limit: limit + 1, reverse: true })) {
      out.push({ record: e.value, key: e.key });
    }
    const last = out[limit - 1]?.key;
    return {
      refused: out.slice(0, limit).map((o) => o.record),
      next: out.length > limit ? `${String(last![1])}.${String(last![2])}` : null,
    };
  }

  #prune(now: number): void {
    for (const [k, v] of this.#lastWrite) if (now - v.at > 1000) this.#lastWrite.delete(k);
  }
}

/** A refusal's message without the parts that change from message to message (names, positions, sizes). */
function reasonKind(reason: string): string {
  return reason.replace(/"[^"]*"|'[^']*'|\d+/g, "").slice(0, 200);
}

/** The payload's first 256 characters as text, with tokens hidden (a device may send its own in a body). */
function preview(payload: unknown): string {
  if (payload === undefined) return "";
  // Hidden before the cut: a token cut short at the end would be left partly shown.
  if (payload instanceof Uint8Array) {
    const text = new TextDecoder("utf-8", { fatal: false }).decode(payload.subarray(0, PREVIEW_CHARS + TOKEN_CHARS));
    return redactTokens(text.replace(/[^\x20-\x7e]/g, "·")).slice(0, PREVIEW_CHARS);
  }
  const text = typeof payload === "string" ? payload : JSON.stringify(payload) ?? "";
  return redactTokens(text.slice(0, PREVIEW_CHARS + TOKEN_CHARS)).slice(0, PREVIEW_CHARS);
}

const PREVIEW_CHARS = 256;
/** The longest token (`sla_` and 43 characters). */
const TOKEN_CHARS = 47;
