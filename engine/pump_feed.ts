import { type PumpState, shownState } from "../actors/pump/decider.ts";
import type { Clock } from "../core/clock.ts";
import { PUMPS_CHANNEL } from "../core/names.ts";
import { topicStream } from "../core/streams.ts";
import { MESSAGE_PUBLISHED, type MessagePublishedData } from "../core/tasks.ts";
import type { Committer } from "../store/committer.ts";

/**
 * Publishes pump state changes on the system channel `_pumps`. A pump that changes faster than
 * `intervalMs` is published at most that often, with its latest state: the feed follows state,
 * it is not a second copy of the pump's log.
 */
export class PumpFeed {
  readonly #last = new Map<string, number>();
  readonly #pending = new Map<string, PumpState>();
  readonly #timers = new Map<string, ReturnType<typeof setTimeout>>();

  constructor(
    private readonly committer: Committer,
    private readonly clock: Clock,
    private readonly retentionMs: number,
    private readonly onError: (err: unknown) => void,
    private readonly intervalMs = 250,
  ) {}

  /** A pump's state changed. */
  changed(id: string, state: PumpState): void {
    const now = this.clock.now();
    // A clock set back since the last one waits an interval from now, not for as long as it went back.
    const last = Math.min(this.#last.get(id) ?? 0, now);
    if (now - last >= this.intervalMs && !this.#timers.has(id)) return this.#publish(id, state, now);
    this.#pending.set(id, state);
    if (!this.#timers.has(id)) {
      this.#timers.set(id, setTimeout(() => this.#flush(id), Math.max(0, last + this.intervalMs - now)));
    }
  }

  /** Publishes what is waiting (at stop). */
  close(): void {
    for (const id of [...this.#timers.keys()]) this.#flush(id);
  }

  #flush(id: string): void {
    clearTimeout(this.#timers.get(id));
    this.#timers.delete(id);
    const state = this.#pending.get(id);
    this.#pending.delete(id);
    if (state) this.#publish(id, state, this.clock.now());
  }

  #publish(id: string, state: PumpState, now: number): void {
    this.#last.set(id, now);
    if (this.#last.size > 100_000) this.#last.clear();
    const data: MessagePublishedData = { message: shownState(state), sender: "_sluice", protocol: "script" };
    this.committer.write({
      appends: [{
        stream: topicStream(PUMPS_CHANNEL),
        event: { type: MESSAGE_PUBLISHED, data },
        expireIn: this.retentionMs,
      }],
    }).catch(this.onError);
  }
}
