import { isCanonicalIsoTime, parseIsoTime } from "../../core/iso_time.ts";
import type { Decider } from "../decider.ts";
import type { PumpCommand, PumpEvent, Reading } from "./events.ts";
import { checkReading, plausibleValue } from "./reading_check.ts";

/** Running figures of one measured quantity. */
export interface Aggregate {
  readonly min: number;
  readonly max: number;
  readonly avg: number;
  readonly sum: number;
}

/** What Sluice knows of a pump: its latest reading and figures over all of them. */
export interface PumpState {
  readonly id: string;
  /** Seq of the last event applied (0 = nothing recorded). */
  readonly version: number;
  readonly readings: number;
  /** The reading with the latest `time` (of two with the same time, the one recorded last). */
  readonly lastReading: Reading | null;
  readonly temperature: Aggregate | null;
  readonly pressure: Aggregate | null;
  /**
   * The outside temperature at the pump's place: from the latest reading that had one, kept only while
   * the later readings are at the same coordinates (null once the pump moved without a new one).
   */
  readonly outsideTemperature: number | null;
  /** The `time` of the reading that brought `outsideTemperature`, ISO time (null without one). */
  readonly outsideTemperatureAt: string | null;
  /**
   * The `time` of the latest reading taken elsewhere than the last reading (null: none known): a late reading at the
   * last one's place brings its outside temperature only if taken after it (the pump had moved in between). Kept for
   * the fold (snapshots), not shown.
   */
  readonly movedAt: string | null;
  /** When Sluice received the earliest and the latest of its readings (message receipt), ISO time. */
  readonly firstSeen: string | null;
  readonly lastSeen: string | null;
  /** When the last event was recorded (its commit), ISO time: `?at=` this time gives this state. */
  readonly updatedAt: string | null;
}

function initialState(id: string): PumpState {
  return {
    id,
    version: 0,
    readings: 0,
    lastReading: null,
    temperature: null,
    pressure: null,
    outsideTemperature: null,
    outsideTemperatureAt: null,
    movedAt: null,
    firstSeen: null,
    lastSeen: null,
    updatedAt: null,
  };
}

function decide(command: PumpCommand, _state: PumpState): readonly PumpEvent[] {
  switch (command.type) {
    case "RecordReading": {
      const reading = checkReading(command.reading, command.receivedAt);
      return [{
        type: "ReadingRecorded",
        data: { reading, receivedAt: command.receivedAt, ...(command.taskId ? { taskId: command.taskId } : {}) },
      }];
    }
    default: {
      const never: never = command.type;
      throw new Error(`Unknown command ${never}`);
    }
  }
}

function fold(agg: Aggregate | null, v: number, n: number): Aggregate {
  if (!agg) return { min: v, max: v, avg: v, sum: v };
  const sum = agg.sum + v;
  return { min: Math.min(agg.min, v), max: Math.max(agg.max, v), sum, avg: sum / n };
}

/** A logged event, with its seq and commit time (ms) when it comes from the log. */
type Logged = PumpEvent & { seq?: number; at?: number };

/**
 * The state's `updatedAt` after an event committed at `at`: never earlier than before, so that a
 * clock set back (a restart on a wrong clock) still gives `?at=<updatedAt>` this state back.
 */
function laterOf(updatedAt: string | null, at: number | undefined): string | null {
  if (at === undefined) return updatedAt;
  const iso = new Date(at).toISOString(); // both as `toISOString` writes them: they compare as text
  return updatedAt !== null && updatedAt > iso ? updatedAt : iso;
}

function evolve(state: PumpState, event: Logged): PumpState {
  switch (event.type) {
    case "ReadingRecorded": {
      const { reading, receivedAt } = event.data;
      const seen = new Date(receivedAt).toISOString();
      const recorded: PumpState = {
        ...state,
        version: event.seq ?? state.version + 1,
        firstSeen: state.firstSeen === null || seen < state.firstSeen ? seen : state.firstSeen,
        lastSeen: state.lastSeen === null || seen > state.lastSeen ? seen : state.lastSeen,
        updatedAt: laterOf(state.updatedAt, event.at),
      };
      // Logged before `decide` refused such values: kept in the log, left out of the figures, whose
      // sums would otherwise overflow to Infinity (shown as null) for good.
      if (!plausibleValue(reading.temperature) || !plausibleValue(reading.pressure)) return recorded;
      const readings = state.readings + 1;
      const last = state.lastReading;
      // Readings may arrive out of order: the latest taken is the pump's last (an unreadable time
      // of an old log entry counts as the latest, as arrival order did).
      const latest = last === null || !takenBefore(reading, last);
      // Whatever the order readings arrive in, the outside temperature is the one of the latest reading taken at the
      // last reading's place that had one, as long as none taken elsewhere came after it (`movedAt`).
      let outside = { value: state.outsideTemperature, at: state.outsideTemperatureAt };
      let movedAt = state.movedAt ?? null;
      const here = sameCoordinates(reading, last);
      if (latest) {
        // Every reading before was taken by the last one's time: moving on, the pump left them all behind.
        if (last !== null && !here) movedAt = last.time;
        if (typeof reading.outsideTemperature === "number") {
          outside = { value: reading.outsideTemperature, at: reading.time };
        } else if (!here) {
          outside = { value: null, at: null }; // another place's temperature would be silently wrong here
        }
      } else if (!here) {
        // Taken elsewhere, late: the pump was away then, so a value taken before that no longer holds.
        if (movedAt === null || takenBefore({ time: movedAt }, reading)) movedAt = reading.time;
        if (outside.at !== null && takenBefore({ time: outside.at }, reading)) outside = { value: null, at: null };
      } else if (typeof reading.outsideTemperature === "number") {
        // Late at the last one's place: a newer value than the one shown (or one where none is), taken since the move.
        const sinceMove = movedAt === null || takenBefore({ time: movedAt }, reading);
        const newer = outside.value === null || (outside.at !== null && !takenBefore(reading, { time: outside.at }));
        if (sinceMove && newer) outside = { value: reading.outsideTemperature, at: reading.time };
      }
      return {
        ...recorded,
        readings,
        lastReading: latest ? reading : last,
        temperature: fold(state.temperature, reading.temperature, readings),
        pressure: fold(state.pressure, reading.pressure, readings),
        outsideTemperature: outside.value,
        outsideTemperatureAt: outside.at,
        movedAt,
      };
    }
    default: {
      const never: never = event.type;
      throw new Error(`Unknown event ${never}`);
    }
  }
}

/**
 * Whether `a` was taken before `b`. Times as Sluice stores them compare as text (no parsing: this
 * runs for every reading); a time an older log entry may hold that is not ISO 8601 counts as the
 * latest, as arrival order did.
 */
function takenBefore(a: Pick<Reading, "time">, b: Pick<Reading, "time">): boolean {
  if (isCanonicalIsoTime(a.time) && isCanonicalIsoTime(b.time)) return a.time < b.time;
  return takenAt(a) < takenAt(b);
}

/** When a reading was taken (ms); NaN for a time that is not ISO 8601. */
function takenAt(r: Pick<Reading, "time">): number {
  return (typeof r.time === "string" ? parseIsoTime(r.time) : null) ?? NaN;
}

/** Whether two readings were taken at the same place (entries of older logs may lack coordinates). */
function sameCoordinates(a: Reading, b: Reading | null): boolean {
  const [p, q] = [a.coordinates, b?.coordinates];
  return !!p && !!q && p.lat === q.lat && p.lon === q.lon;
}

/**
 * A state saved by an earlier version, brought up to date so that an upgrade does not replay every
 * pump's whole log. Shape 2 lacks `movedAt`: no move is known before it (a later late reading from
 * before such a move may bring its value, as it did then). Shape 1 also lacks `outsideTemperatureAt`
 * and `updatedAt`: `updatedAt` is the snapshot's last commit, the outside temperature is kept only
 * where the last reading brought it. Null (replay instead) for a state whose figures overflowed,
 * which the replay leaves out.
 */
function upcast(old: unknown, shape: number, at: number): PumpState | null {
  if (shape === 2) return { ...(old as Omit<PumpState, "movedAt">), movedAt: null };
  if (shape !== 1) return null;
  const s = old as Omit<PumpState, "outsideTemperatureAt" | "updatedAt" | "movedAt">;
  const finite = (a: Aggregate | null) => a === null || (Number.isFinite(a.sum) && Number.isFinite(a.avg));
  if (!finite(s.temperature) || !finite(s.pressure)) return null;
  const brought = typeof s.lastReading?.outsideTemperature === "number" ? s.lastReading : null;
  return {
    ...s,
    outsideTemperature: brought?.outsideTemperature ?? null,
    outsideTemperatureAt: brought?.time ?? null,
    movedAt: null,
    updatedAt: new Date(at).toISOString(),
  };
}

/**
 * A state as shown (API, `_pumps`): aggregates to 12 significant digits, without the noise a
 * sum of floats gathers (5.1000000000000005). The folded state keeps every digit.
 */
export function shownState(state: PumpState): ShownPumpState {
  const shown = (a: Aggregate | null): Aggregate | null =>
    a && { min: a.min, max: a.max, avg: Number(a.avg.toPrecision(12)), sum: Number(a.sum.toPrecision(12)) };
  const { movedAt: _, ...rest } = state;
  return { ...rest, temperature: shown(state.temperature), pressure: shown(state.pressure) };
}

/** A pump's state as the API and `_pumps` show it. */
export type ShownPumpState = Omit<PumpState, "movedAt">;

/** The pump actor: a reading in, a `ReadingRecorded` event out, aggregates folded. */
export const pumpDecider: Decider<PumpState, PumpCommand, Logged> = {
  initialState,
  decide,
  evolve,
  // 2: `outsideTemperatureAt` and `updatedAt`; `lastReading` the latest taken, not the latest recorded. 3: `movedAt`.
  stateShape: 3,
  upcast,
};
