import { ValidationError } from "../../core/errors.ts";
import type { Decider } from "../decider.ts";
import type { PumpCommand, PumpEvent, Reading } from "./events.ts";

/** Running figures of one measured quantity. */
export interface Aggregate {
  readonly min: number;
  readonly max: number;
  readonly avg: number;
  readonly sum: number;
}

/** What Sluice knows of a pump: its last reading and figures over all of them. */
export interface PumpState {
  readonly id: string;
  /** Seq of the last event applied (0 = nothing recorded). */
  readonly version: number;
  readonly readings: number;
  readonly lastReading: Reading | null;
  readonly temperature: Aggregate | null;
  readonly pressure: Aggregate | null;
  readonly outsideTemperature: number | null;
  /** When Sluice first and last received a reading, ISO time. */
  readonly firstSeen: string | null;
  readonly lastSeen: string | null;
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
    firstSeen: null,
    lastSeen: null,
  };
}

function decide(command: PumpCommand, _state: PumpState): readonly PumpEvent[] {
  switch (command.type) {
    case "RecordReading": {
      const r = command.reading;
      for (const [name, v] of [["temperature", r.temperature], ["pressure", r.pressure]] as const) {
        if (typeof v !== "number" || !Number.isFinite(v)) {
          throw new ValidationError(`Reading has no valid ${name}: ${JSON.stringify(v)}`);
        }
      }
      return [{
        type: "ReadingRecorded",
        data: { reading: r, receivedAt: command.receivedAt, ...(command.taskId ? { taskId: command.taskId } : {}) },
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

function evolve(state: PumpState, event: PumpEvent & { seq?: number }): PumpState {
  switch (event.type) {
    case "ReadingRecorded": {
      const { reading, receivedAt } = event.data;
      const readings = state.readings + 1;
      const seen = new Date(receivedAt).toISOString();
      return {
        ...state,
        version: event.seq ?? state.version + 1,
        readings,
        lastReading: reading,
        temperature: fold(state.temperature, reading.temperature, readings),
        pressure: fold(state.pressure, reading.pressure, readings),
        outsideTemperature: reading.outsideTemperature ?? state.outsideTemperature,
        firstSeen: state.firstSeen ?? seen,
        lastSeen: seen,
      };
    }
    default: {
      const never: never = event.type;
      throw new Error(`Unknown event ${never}`);
    }
  }
}

/**
 * A state as shown (API, `_pumps`): aggregates to 12 significant digits, without the noise a
 * sum of floats gathers (5.1000000000000005). The folded state keeps every digit.
 */
export function shownState(state: PumpState): PumpState {
  const shown = (a: Aggregate | null): Aggregate | null =>
    a && { min: a.min, max: a.max, avg: Number(a.avg.toPrecision(12)), sum: Number(a.sum.toPrecision(12)) };
  return { ...state, temperature: shown(state.temperature), pressure: shown(state.pressure) };
}

/** The pump actor: a reading in, a `ReadingRecorded` event out, aggregates folded. */
export const pumpDecider: Decider<PumpState, PumpCommand, PumpEvent & { seq?: number }> = {
  initialState,
  decide,
  evolve,
};
