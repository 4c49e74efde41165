import type { Decider } from "../actors/decider.ts";
import { asEvent, type Snapshot, usableSnapshot } from "../actors/runtime.ts";
import type { Clock } from "../core/clock.ts";
import { keys } from "../store/keys.ts";
import { isKvTrouble } from "../store/kv_errors.ts";
import { readEvents } from "../store/kv_event_store.ts";

/** Events trimmed in one commit, beside the new base. */
export const TRIM_BATCH = 250;

export interface TrimmerOptions<S> {
  readonly kv: Deno.Kv;
  readonly clock: Clock;
  /** Events recorded longer ago than this are trimmed. */
  readonly retentionMs: number;
  // deno-lint-ignore no-explicit-any
  readonly decider: Decider<S, any, any>;
  /** The prefix of the streams to trim (`p/`), and the actor id of one of them. */
  readonly prefix: string;
  readonly idOf: (stream: string) => string;
  readonly log?: (line: string) => void;
  /** A sweep still running after this long says how far it is, and again as often (default: a minute). */
  readonly progressMs?: number;
}

/** What a sweep did. */
export interface TrimReport {
  /** Logs that lost events, and how many in all. */
  readonly streams: number;
  readonly events: number;
  /** Logs looked at. */
  readonly scanned: number;
}

/**
 * Trims the start of actor logs past a retention. The events recorded (committed) more than
 * `retentionMs` ago are folded into the log's base (`keys.base`, the state after the last event
 * trimmed) and deleted in the same commit, so the state still counts every event while the log
 * keeps only the recent ones; the runtime starts from the base. A log's newest event is always
 * kept: where the log starts then tells the runtime a base it read is out of date. A base changed
 * meanwhile (another instance trimming the same log) fails the commit; that log waits for the next
 * sweep.
 */
export class HistoryTrimmer<S extends { readonly version: number }> {
  /** Events trimmed by this process's sweeps. */
  trimmed = 0;
  #sweeping: Promise<unknown> | null = null;

  constructor(private readonly options: TrimmerOptions<S>) {}

  /**
   * Sweeps after `firstMs`, then every `everyMs`, until `signal` aborts (a sweep still running
   * stops at its next log). A sweep that trimmed says so in one line.
   */
  schedule(firstMs: number, everyMs: number, signal: AbortSignal): void {
    const run = () => {
      if (signal.aborted || this.#sweeping) return;
      const started = this.options.clock.now();
      this.#sweeping = this.sweep(signal).then(
        (r) =>
          r.events > 0 && this.options.log?.(
            `Trimmed ${r.events} event(s) recorded over ${
              this.options.retentionMs / 3_600_000
            } h ago from ${r.streams} of ${r.scanned} log(s) in ${
              ((this.options.clock.now() - started) / 1000).toFixed(1)
            } s`,
          ),
        (err) =>
          signal.aborted ||
          this.options.log?.(`Trimming old events failed (tried again in ${everyMs / 60_000} min): ${err}`),
      ).finally(() => this.#sweeping = null);
    };
    const first = setTimeout(() => {
      run();
      const every = setInterval(run, everyMs);
      signal.addEventListener("abort", () => clearInterval(every), { once: true });
    }, firstMs);
    signal.addEventListener("abort", () => clearTimeout(first), { once: true });
  }

  /** Trims every log under the prefix; stops early, with what it did, once `signal` aborts. */
  async sweep(signal?: AbortSignal): Promise<TrimReport> {
    const { kv, prefix } = this.options;
    const cutoff = this.options.clock.now() - this.options.retentionMs;
    let streams = 0, events = 0, scanned = 0;
    // Every stream has a head key: the heads list the logs without reading their events.
    const heads = kv.list({ start: keys.head(prefix), end: keys.head(prefix.slice(0, -1) + "0") }, { batchSize: 500 });
    let saidAt = performance.now();
    for await (const head of heads) {
      if (signal?.aborted) break;
      scanned++;
      const stream = head.key[1] as string;
      let n = 0;
      try {
        n = await this.trim(stream, cutoff, signal);
      } catch (err) {
        // One log that cannot be trimmed (a base state over KV's 64 KiB value limit, or of an old shape)
        // holds up no other.
        if (isKvTrouble(err)) throw err;
        this.options.log?.(`Cannot trim ${stream}: ${err instanceof Error ? err.message : String(err)}`);
      }
      if (n > 0) streams++, events += n;
      // A first sweep over a long-kept history can take minutes: say how far it is once a minute.
      if (performance.now() - saidAt >= (this.options.progressMs ?? 60_000)) {
        saidAt = performance.now();
        this.options.log?.(`Trimming old events: ${events} so far, from ${streams} of the ${scanned} log(s) looked at`);
      }
    }
    return { streams, events, scanned };
  }

  /** Trims one log's events recorded before `cutoff` (ms); how many. */
  async trim(stream: string, cutoff: number, signal?: AbortSignal): Promise<number> {
    const { kv, decider } = this.options;
    let trimmed = 0;
    while (!signal?.aborted) {
      const [oldest] = await readEvents(kv, stream, 1, 1);
      if (!oldest || oldest.at >= cutoff) return trimmed;
      const saved = await kv.get<Snapshot<S>>(keys.base(stream));
      const base = usableSnapshot(decider, saved.value);
      if (saved.value && !base) throw new Error("its base was saved in a state shape the actor no longer reads");
      const page = await readEvents(kv, stream, (base?.version ?? 0) + 1, TRIM_BATCH + 1);
      // The page's last event is the log's newest when the page is not full: kept.
      const old = page.slice(0, Math.min(TRIM_BATCH, page.length - 1));
      const end = old.findIndex((e) => e.at >= cutoff);
      if (end !== -1) old.length = end;
      if (old.length === 0) return trimmed;
      let state = base?.state ?? decider.initialState(this.options.idOf(stream));
      for (const e of old) state = decider.evolve(state, asEvent(e));
      const last = old.at(-1)!;
      const next: Snapshot<S> = { version: last.seq, at: last.at, state, shape: decider.stateShape ?? 1 };
      const op = kv.atomic().check(saved).set(keys.base(stream), next);
      for (const e of old) op.delete(keys.event(stream, e.seq));
      if (!(await op.commit()).ok) return trimmed;
      trimmed += old.length;
      this.trimmed += old.length;
    }
    return trimmed;
  }
}
