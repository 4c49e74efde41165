/** An actor's logic: pure, no I/O, no clock. The runtime loads, decides, appends and evolves. */
export interface Decider<State, Command, Event> {
  readonly initialState: (id: string) => State;
  /** The events a command leads to in this state; throws a `ValidationError` to refuse it. */
  readonly decide: (command: Command, state: State) => readonly Event[];
  /** The state after an event. */
  readonly evolve: (state: State, event: Event) => State;
  /**
   * The version of the state's shape (1 when absent): bump it when the state changes shape, and
   * snapshots saved under another are not used (the state is replayed from the log instead).
   */
  readonly stateShape?: number;
  /**
   * A state saved under an older shape, brought to the current one (null: replay the log instead;
   * where a log's start was trimmed, the base then cannot be read and the state is lost: give one).
   * `at` is the commit time of the last event folded into it.
   */
  readonly upcast?: (state: unknown, shape: number, at: number) => State | null;
}
