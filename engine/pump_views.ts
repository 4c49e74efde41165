import { type PumpState, type ShownPumpState, shownState } from "../actors/pump/decider.ts";
import type { PumpCommand, PumpEvent } from "../actors/pump/events.ts";
import { type ActorRuntime, TrimmedHistoryError } from "../actors/runtime.ts";
import { NotFoundError } from "../core/errors.ts";
import { PUMP_STREAM_PREFIX, pumpStream } from "../core/streams.ts";
import type { StoredEvent } from "../store/event_store.ts";
import { keys } from "../store/keys.ts";
import type { Committer } from "../store/committer.ts";
import { readLog } from "../store/kv_event_store.ts";

/** A page of a pump's history. */
export interface EventPage {
  readonly events: readonly { seq: number; type: string; data: unknown; at: string }[];
  /** The `from` of the next page, or null at the end. */
  readonly next: number | null;
}

/** Read side of the pumps: list, current state, state at a point in time, history pages. */
export class PumpViews {
  constructor(
    private readonly kv: Deno.Kv,
    /** Readings acked but still in the inbox are read from it. */
    private readonly committer: Committer,
    private readonly runtime: ActorRuntime<PumpState, PumpCommand, PumpEvent>,
  ) {}

  /**
   * Pump ids in order, from `after` on, at most `limit`, and whether more follow; `only` limits the
   * list to that pump.
   */
  async ids(limit: number, after?: string, only?: string): Promise<{ ids: string[]; more: boolean }> {
    if (only !== undefined) {
      return { ids: (await this.kv.get(keys.head(pumpStream(only)))).versionstamp ? [only] : [], more: false };
    }
    const ids: string[] = [];
    const iter = this.kv.list({
      start: after ? [...keys.head(pumpStream(after)), ""] : keys.head(PUMP_STREAM_PREFIX),
      end: keys.head(PUMP_STREAM_PREFIX.slice(0, -1) + "0"),
    }, { limit: limit + 1 });
    for await (const e of iter) ids.push((e.key[1] as string).slice(PUMP_STREAM_PREFIX.length));
    return { ids: ids.slice(0, limit), more: ids.length > limit };
  }

  /** Current state; `NotFoundError` for a pump with no readings. */
  async state(id: string): Promise<ShownPumpState> {
    const state = await this.runtime.state(id);
    if (state.version === 0) {
      this.runtime.evict(id); // no actor kept in memory for a pump that does not exist
      throw new NotFoundError(`Pump "${id}" has no readings`);
    }
    return shownState(state);
  }

  /** The state as of a version, or as of an ISO time of recording; a version not reached yet is a 404. */
  async stateAt(id: string, at: { version: number } | { time: number }): Promise<ShownPumpState> {
    const current = await this.state(id);
    if ("version" in at && at.version > current.version) {
      throw new NotFoundError(
        `Pump "${id}" is at version ${current.version}; version ${at.version} does not exist yet`,
      );
    }
    try {
      return shownState(await this.runtime.stateAt(id, at));
    } catch (err) {
      if (!(err instanceof TrimmedHistoryError)) throw err;
      const { version, at: when } = err.base;
      throw new NotFoundError(
        `Pump "${id}"'s history before version ${version + 1} is no longer kept (READING_RETENTION): ` +
          `ask for version ${version} or later, or a time from ${new Date(when).toISOString()} on`,
      );
    }
  }

  /**
   * A page of events from seq `from` (from the oldest kept when older ones were trimmed);
   * `NotFoundError` for a pump with no readings, whatever `from`.
   */
  async events(id: string, from: number, limit: number): Promise<EventPage> {
    const stream = pumpStream(id);
    const page: StoredEvent[] = await readLog(this.kv, this.committer, stream, from, limit + 1);
    // A trimmed history keeps its newest event: a pump with readings has one from 1 on.
    if (page.length === 0 && (from <= 1 || (await readLog(this.kv, this.committer, stream, 1, 1)).length === 0)) {
      throw new NotFoundError(`Pump "${id}" has no readings`);
    }
    const shown = page.slice(0, limit);
    return {
      events: shown.map((e) => ({ seq: e.seq, type: e.type, data: e.data, at: new Date(e.at).toISOString() })),
      next: page.length > limit ? page[limit]!.seq : null,
    };
  }
}
