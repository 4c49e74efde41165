import type { Clock } from "../core/clock.ts";
import type { Decider } from "./decider.ts";

/** An event read back from a log, as the runtime needs it. */
export interface LoggedEvent {
  readonly seq: number;
  readonly type: string;
  readonly data: unknown;
  readonly at: number;
}

/** A saved state and the last event folded into it. */
export interface Snapshot<S> {
  readonly version: number;
  /** Commit time of that event. */
  readonly at: number;
  readonly state: S;
  /** The decider's `stateShape` when it was saved (absent: 1). */
  readonly shape?: number;
}

/** Where the runtime reads logs and keeps snapshots. */
export interface ActorStorage<S> {
  read(stream: string, from: number, limit: number): Promise<LoggedEvent[]>;
  loadSnapshot(stream: string): Promise<Snapshot<S> | null>;
  saveSnapshot(stream: string, snapshot: Snapshot<S>): Promise<void>;
  /**
   * Where a log's oldest events were trimmed: the state after the last event trimmed (absent, or
   * null, while the log is whole). The log then starts at its `version + 1`.
   */
  loadBase?(stream: string): Promise<Snapshot<S> | null>;
}

/** `stateAt` for a version or time older than the log still keeps (its start was trimmed). */
export class TrimmedHistoryError extends Error {
  constructor(readonly base: Snapshot<unknown>) {
    super(`the log before version ${base.version + 1} was trimmed`);
  }
}

export interface RuntimeOptions<S, C, E> {
  readonly decider: Decider<S, C, E>;
  readonly streamOf: (id: string) => string;
  readonly storage: ActorStorage<S>;
  readonly clock: Clock;
  /** Save a snapshot every this many events. */
  readonly snapshotEvery?: number;
  /** Actors idle longer than this are dropped from memory. */
  readonly idleMs?: number;
  /** Most actors kept in memory at once. */
  readonly maxLive?: number;
  /** Told of every state change (to publish it). */
  readonly onChange?: (id: string, state: S) => void;
  /** Where other instances may append too: the log's head, checked before a read of the state. */
  readonly verifyHead?: (id: string) => Promise<number>;
}

interface Live<S> {
  state: S;
  at: number;
  snapshotVersion: number;
  lastUsed: number;
}

/**
 * Runs actors: state rebuilt from snapshot + log replay, kept in memory while used, evolved with
 * events once their commit landed, snapshotted every N events, passivated when idle.
 */
export class ActorRuntime<S extends { readonly version: number }, C, E extends { readonly type: string }> {
  readonly #live = new Map<string, Live<S>>();
  readonly #loading = new Map<string, { promise: Promise<Live<S>>; late: LoggedEvent[] }>();
  readonly #snapshotEvery: number;
  readonly #idleMs: number;
  readonly #maxLive: number;

  constructor(private readonly options: RuntimeOptions<S, C, E>) {
    this.#snapshotEvery = options.snapshotEvery ?? 100;
    this.#idleMs = options.idleMs ?? 10 * 60_000;
    this.#maxLive = options.maxLive ?? 50_000;
  }

  /** The current state of an actor (initial state if its log is empty). */
  async state(id: string): Promise<S> {
    const live = await this.#get(id);
    if (this.options.verifyHead && (await this.options.verifyHead(id)) > live.state.version) {
      const stream = this.options.streamOf(id);
      for (;;) {
        const page = await this.options.storage.read(stream, live.state.version + 1, 1000);
        // Commits may have landed while the page was read: fold only what the actor has not seen.
        if (!this.#fold(live, page)) {
          // The events it missed were trimmed since (it was behind by more than the retention).
          this.#live.delete(id);
          return (await this.#get(id)).state;
        }
        if (page.length < 1000) break;
      }
    }
    return live.state;
  }

  /** The events a command leads to, decided against the current state. */
  async decide(id: string, command: C): Promise<readonly E[]> {
    return this.options.decider.decide(command, (await this.#get(id)).state);
  }

  /** Folds events whose commit landed into the live actor, if it is in memory. */
  applyCommitted(id: string, events: readonly LoggedEvent[]): void {
    const loading = this.#loading.get(id);
    if (loading) {
      loading.late.push(...events);
      return;
    }
    const live = this.#live.get(id);
    if (!live) {
      // Passivated meanwhile: the log has the events; load it to tell the listener.
      if (this.options.onChange) this.#get(id).then((l) => this.options.onChange?.(id, l.state), () => {});
      return;
    }
    if (!this.#fold(live, events)) {
      this.#live.delete(id); // a gap: reload from the log next time
      return;
    }
    this.options.onChange?.(id, live.state);
    this.#maybeSnapshot(id, live);
  }

  /**
   * The state as it was at a version, or at a time (ms), by replay; `TrimmedHistoryError` when that
   * is older than the log still keeps.
   */
  async stateAt(id: string, at: { version: number } | { time: number }): Promise<S> {
    const fits = (s: Snapshot<S>) => "version" in at ? s.version <= at.version : s.at <= at.time;
    const replayed = await this.#replaySaved(id, (snap, base) => {
      // A snapshot older than the base is of no use: the events after it were trimmed.
      const floor = base?.version ?? 0;
      const start = [snap, base].filter((s): s is Snapshot<S> => s !== null && s.version >= floor && fits(s))
        .sort((a, b) => b.version - a.version)[0] ?? null;
      if (!start && base) throw new TrimmedHistoryError(base);
      return start;
    }, (e) => "version" in at ? e.seq > at.version : e.at > at.time);
    return replayed.state;
  }

  /** Ids of the actors in memory. */
  liveCount(): number {
    return this.#live.size;
  }

  /** Drops idle actors (and the least recently used past `maxLive`). */
  passivate(): number {
    const now = this.options.clock.now();
    let dropped = 0;
    for (const [id, live] of this.#live) {
      if (now - live.lastUsed > this.#idleMs) this.#live.delete(id), dropped++;
    }
    if (this.#live.size > this.#maxLive) {
      const byAge = [...this.#live].sort((a, b) => a[1].lastUsed - b[1].lastUsed);
      for (const [id] of byAge.slice(0, this.#live.size - this.#maxLive)) this.#live.delete(id), dropped++;
    }
    return dropped;
  }

  /** Folds the events after the actor's version into it, in order; false at a gap. */
  #fold(live: Live<S>, events: readonly LoggedEvent[]): boolean {
    for (const e of events) {
      if (e.seq <= live.state.version) continue;
      if (e.seq !== live.state.version + 1) return false;
      live.state = this.options.decider.evolve(live.state, this.#asEvent(e));
      live.at = Math.max(live.at, e.at); // a clock set back does not take the state's time back
    }
    return true;
  }

  /** Forgets an actor (its log changed elsewhere). */
  evict(id: string): void {
    this.#live.delete(id);
  }

  async #get(id: string): Promise<Live<S>> {
    const live = this.#live.get(id);
    if (live) {
      live.lastUsed = this.options.clock.now();
      return live;
    }
    const pending = this.#loading.get(id);
    if (pending) return pending.promise;
    const entry = { promise: this.#load(id), late: [] as LoggedEvent[] };
    this.#loading.set(id, entry);
    try {
      const loaded = await entry.promise;
      for (const e of entry.late) {
        if (e.seq === loaded.state.version + 1) {
          loaded.state = this.options.decider.evolve(loaded.state, this.#asEvent(e));
          loaded.at = Math.max(loaded.at, e.at);
        }
      }
      this.#live.set(id, loaded);
      if (this.#live.size > this.#maxLive * 1.1) this.passivate();
      return loaded;
    } finally {
      this.#loading.delete(id);
    }
  }

  async #load(id: string): Promise<Live<S>> {
    const { state, at, snap } = await this.#replaySaved(
      id,
      (snap, base) => snap && (!base || snap.version >= base.version) ? snap : base,
    );
    const live = { state, at, snapshotVersion: snap?.version ?? 0, lastUsed: this.options.clock.now() };
    this.#maybeSnapshot(id, live);
    return live;
  }

  /**
   * Reads the saved states (the snapshot, and the base where the log was trimmed), starts from the
   * one `pick` chooses and folds the log from there. When the log no longer starts right after it,
   * a trim landed meanwhile (it moves the base with the events it deletes): read them again, for as
   * long as the base keeps moving; a hole the base does not explain is folded over.
   */
  async #replaySaved(
    id: string,
    pick: (snap: Snapshot<S> | null, base: Snapshot<S> | null) => Snapshot<S> | null,
    past?: (e: LoggedEvent) => boolean,
  ): Promise<{ state: S; at: number; snap: Snapshot<S> | null }> {
    const stream = this.options.streamOf(id);
    let lastBase: number | undefined;
    for (;;) {
      const [snap, base] = await Promise.all([this.#loadSnapshot(stream), this.#loadBase(stream)]);
      const baseVersion = base?.version ?? 0;
      const trimmedMeanwhile = this.#trimmable && baseVersion !== lastBase;
      const replayed = await this.#replay(id, pick(snap, base), trimmedMeanwhile, past);
      if (replayed) return { ...replayed, snap };
      lastBase = baseVersion;
    }
  }

  /**
   * Folds the log into `start` (a saved state, or the initial one) from the event after it, up to
   * the end or to the first event `past` picks. Null, where `trimmable`, when the log no longer
   * starts there.
   */
  async #replay(
    id: string,
    start: Snapshot<S> | null,
    trimmable: boolean,
    past?: (e: LoggedEvent) => boolean,
  ): Promise<{ state: S; at: number } | null> {
    const stream = this.options.streamOf(id);
    let state = start?.state ?? this.options.decider.initialState(id);
    let at = start?.at ?? 0;
    const first = (start?.version ?? 0) + 1;
    for (let from = first;;) {
      const page = await this.options.storage.read(stream, from, 1000);
      if (trimmable && from === first && page.length > 0 && page[0]!.seq !== first) return null;
      for (const e of page) {
        if (past?.(e)) return { state, at };
        state = this.options.decider.evolve(state, this.#asEvent(e));
        at = Math.max(at, e.at);
      }
      if (page.length < 1000) return { state, at };
      from = page.at(-1)!.seq + 1;
    }
  }

  /** The stream's snapshot, if it holds a state of the decider's current shape or one it can upcast. */
  async #loadSnapshot(stream: string): Promise<Snapshot<S> | null> {
    return usableSnapshot(this.options.decider, await this.options.storage.loadSnapshot(stream));
  }

  /** Whether logs may lose their oldest events (the storage keeps a base where they were trimmed). */
  get #trimmable(): boolean {
    return this.options.storage.loadBase !== undefined;
  }

  /**
   * The state where the stream's log was trimmed, if it was. One the decider cannot read (a new
   * state shape without an upcast) throws: the events it stands for are gone, so a state folded
   * without it would silently miss them.
   */
  async #loadBase(stream: string): Promise<Snapshot<S> | null> {
    const base = await this.options.storage.loadBase?.(stream) ?? null;
    if (!base) return null;
    const usable = usableSnapshot(this.options.decider, base);
    if (!usable) {
      throw new Error(
        `${stream} was trimmed up to version ${base.version}, saved in state shape ${base.shape ?? 1}, ` +
          `which this version cannot read (give its decider an upcast from that shape)`,
      );
    }
    return usable;
  }

  #maybeSnapshot(id: string, live: Live<S>): void {
    if (live.state.version - live.snapshotVersion < this.#snapshotEvery) return;
    live.snapshotVersion = live.state.version;
    this.options.storage.saveSnapshot(this.options.streamOf(id), {
      version: live.state.version,
      at: live.at,
      state: live.state,
      shape: this.options.decider.stateShape ?? 1,
    }).catch(() => {
      live.snapshotVersion = 0; // try again at the next event
    });
  }

  #asEvent(e: LoggedEvent): E {
    return asEvent<E>(e);
  }
}

/** A logged event as a decider's `evolve` takes it. */
export function asEvent<E>(e: LoggedEvent): E {
  return { type: e.type, data: e.data, seq: e.seq, at: e.at } as unknown as E;
}

/** A saved state of the decider's current shape, or one it can upcast; null otherwise. */
export function usableSnapshot<S>(
  decider: Pick<Decider<S, unknown, unknown>, "stateShape" | "upcast">,
  snap: Snapshot<S> | null,
): Snapshot<S> | null {
  const { stateShape = 1, upcast } = decider;
  if (!snap || (snap.shape ?? 1) === stateShape) return snap;
  const state = upcast?.(snap.state, snap.shape ?? 1, snap.at) ?? null;
  return state === null ? null : { ...snap, state, shape: stateShape };
}
