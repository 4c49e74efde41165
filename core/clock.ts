/** Time source, injected so tests and simulators are deterministic. */
export interface Clock {
  now(): number;
}

/** The wall clock. */
export const systemClock: Clock = { now: () => Date.now() };

/** A clock moved by hand (tests): its time is `at`, which the caller sets. */
export function handClock(at: number): Clock & { at: number } {
  return {
    at,
    now() {
      return this.at;
    },
  };
}
