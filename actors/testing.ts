import assert from "node:assert/strict";
import type { Decider } from "./decider.ts";

/** Given/when/then for deciders: `given(decider, id, events).when(command).then(events, check)`. */
export function given<S, C, E>(decider: Decider<S, C, E>, id: string, history: readonly E[]) {
  const state = history.reduce(decider.evolve, decider.initialState(id));
  return {
    when(command: C) {
      return {
        then(expected: readonly E[], check?: (after: S) => void) {
          const events = decider.decide(command, state);
          assert.deepEqual(events, expected);
          check?.(events.reduce(decider.evolve, state));
        },
        thenThrows(error: new (...args: never[]) => Error) {
          assert.throws(() => decider.decide(command, state), error);
        },
      };
    },
  };
}
