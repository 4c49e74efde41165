import type { ActorStorage, LoggedEvent, Snapshot } from "../actors/runtime.ts";
import type { Committer } from "./committer.ts";
import { keys } from "./keys.ts";
import { ReadBatcher } from "./read_batcher.ts";
import { readLog } from "./kv_event_store.ts";

/** Actor logs and snapshots on Deno KV. Snapshots go through the group commit. */
export class KvActorStorage<S> implements ActorStorage<S> {
  readonly #reads: ReadBatcher;

  /** `reads`: the process's batched reads (a burst of pumps loaded at once reads their saved states ten a KV call). */
  constructor(private readonly kv: Deno.Kv, private readonly committer: Committer, reads?: ReadBatcher) {
    this.#reads = reads ?? new ReadBatcher(kv);
  }

  read(stream: string, from: number, limit: number): Promise<LoggedEvent[]> {
    return readLog(this.kv, this.committer, stream, from, limit, this.#reads);
  }

  async loadSnapshot(stream: string): Promise<Snapshot<S> | null> {
    return (await this.#reads.get<Snapshot<S>>(keys.snapshot(stream))).value;
  }

  async loadBase(stream: string): Promise<Snapshot<S> | null> {
    return (await this.#reads.get<Snapshot<S>>(keys.base(stream))).value;
  }

  async saveSnapshot(stream: string, snapshot: Snapshot<S>): Promise<void> {
    await this.committer.write({ sets: [{ key: keys.snapshot(stream), value: snapshot }] });
  }
}
