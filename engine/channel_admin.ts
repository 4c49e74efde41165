import { ConflictError, ForbiddenError, NotFoundError, ValidationError } from "../core/errors.ts";
import { isSystemChannel } from "../core/names.ts";
import { topicStream } from "../core/streams.ts";
import type { ChannelConfig, ChannelRegistry, NewChannel, SubscriberStarts } from "../store/channel_registry.ts";
import { trueHead } from "../store/heads.ts";
import { keys } from "../store/keys.ts";
import { chunked, deleteKeys } from "../store/kv_limits.ts";
import { subscriberRunOf, subscriberRunPrefix } from "../core/task_id.ts";
import { queueDepth } from "./channel_stats.ts";
import { type Lane, subscriberConsumer } from "./lanes.ts";

/** What may change on a channel; `defaultScript: null` removes it. Its ordering cannot change. */
export interface ChannelPatch {
  /** Accepted only as it is (a whole config sent back); queued tasks are partitioned by it. */
  readonly ordering?: ChannelConfig["ordering"];
  readonly anonymousPublish?: boolean;
  readonly anonymousSubscribe?: boolean;
  readonly subscribers?: readonly string[];
  readonly defaultScript?: string | null;
  readonly paused?: boolean;
}

/** Subscriber scripts a channel may have (as the channel routes' schemas say). */
export const MAX_SUBSCRIBERS = 20;

/** A subscriber script added with `subscribe`: the first message it runs, and the topic's head then. */
export interface SubscriptionAdded {
  readonly channel: string;
  readonly script: string;
  readonly from: number;
  readonly head: number;
}

export interface ChannelAdminOptions {
  readonly kv: Deno.Kv;
  readonly channels: ChannelRegistry;
  readonly scripts: ReadonlySet<string>;
  /** A stream's head: the writer's own (it may be ahead of the head key) or the head key's. */
  readonly headOf: (stream: string, headKey: number) => number;
  /** The runner of subscriber scripts' lanes. */
  readonly lanes: {
    /** Forgets what it holds of an idle lane, so a script added again starts afresh. */
    forget(lane: Lane): void;
    /** Drains a lane up to its stream's head. */
    wake(lane: Lane): void;
    /** Resolves once this process is not draining the lane, waiting a few seconds at most (false: it still is). */
    settle(lane: Lane): Promise<boolean>;
    /** Wakes the lanes of a channel whose scripts were paused; says how many are behind. */
    resumeChannel(name: string): Promise<number>;
    /** Drops what a paused channel's lanes have queued. */
    purgeChannel(name: string): Promise<{ tasks: number; lanes: number; busy: number }>;
  };
}

/**
 * Creates, changes and deletes channels. A subscriber script runs for the messages published
 * after it was added: it starts at the topic's head, also on a channel created again under the
 * name of a deleted one (whose topic keeps its seqs).
 */
export class ChannelAdmin {
  constructor(private readonly options: ChannelAdminOptions) {}

  async create(channel: NewChannel): Promise<ChannelConfig> {
    if (isSystemChannel(channel.name)) throw new ValidationError(`Channel names starting with "_" belong to Sluice`);
    this.#checkScripts([...channel.subscribers, ...(channel.defaultScript ? [channel.defaultScript] : [])]);
    await this.#checkOrderingKept(channel);
    return await this.options.channels.create(channel, await this.#starts(channel.name, channel.subscribers));
  }

  /**
   * A channel created again under the name of one deleted with tasks still queued: those run in the partitions of the
   * old ordering, so another one (but none) would let a device's new tasks pass its old ones.
   */
  async #checkOrderingKept(channel: NewChannel): Promise<void> {
    const gone = await this.options.channels.goneOrdering(channel.name);
    if (gone === null || gone === "none" || channel.ordering === "none" || gone === channel.ordering) return;
    const { queued } = await queueDepth(this.options.kv, channel.name, this.options.headOf);
    if (queued === 0) return;
    throw new ConflictError(
      `Channel "${channel.name}" was deleted with ${queued} task${queued === 1 ? "" : "s"} still queued, ordered by ` +
        `"${gone}": create it again with "ordering": "${gone}", or once they are done (its stats count them)`,
    );
  }

  async update(name: string, patch: ChannelPatch): Promise<ChannelConfig> {
    this.#notSystem(name);
    const subscribers = patch.subscribers ? [...new Set(patch.subscribers)] : undefined;
    this.#checkScripts([...(subscribers ?? []), ...(patch.defaultScript ? [patch.defaultScript] : [])]);
    let before: readonly string[] = [];
    let wasPaused = false;
    const updated = await this.options.channels.update(name, async (current) => {
      before = current.subscribers;
      wasPaused = current.paused === true;
      if (patch.ordering !== undefined && patch.ordering !== current.ordering) {
        throw new ValidationError(
          `The ordering of channel "${name}" cannot change (its queued tasks are partitioned by it): ` +
            "create a new channel",
        );
      }
      const { defaultScript: _, paused: __, ...kept } = current;
      const defaultScript = patch.defaultScript === undefined ? current.defaultScript : patch.defaultScript;
      const config: ChannelConfig = {
        ...kept,
        anonymousPublish: patch.anonymousPublish ?? current.anonymousPublish,
        anonymousSubscribe: patch.anonymousSubscribe ?? current.anonymousSubscribe,
        subscribers: subscribers ?? current.subscribers,
        ...(defaultScript ? { defaultScript } : {}),
        ...(patch.paused ?? current.paused ? { paused: true } : {}),
      };
      const added = config.subscribers.filter((s) => !current.subscribers.includes(s));
      return { config, starts: await this.#starts(name, added) };
    });
    if (!updated) throw new NotFoundError(`Channel "${name}" does not exist`);
    const added = updated.subscribers.filter((s) => !before.includes(s));
    this.#forget(name, [...before.filter((s) => !updated.subscribers.includes(s)), ...added]);
    // A message published while the change was under way woke only the scripts subscribed before.
    for (const s of added) this.options.lanes.wake(this.#lane(name, s));
    // Resumed: its lanes behind go on (they stopped draining, and what came meanwhile woke them in vain).
    if (wasPaused && !updated.paused) await this.options.lanes.resumeChannel(name);
    return updated;
  }

  /**
   * Adds one subscriber script that starts at message `from` (1: every message the topic still
   * keeps, a replay of its history into whatever the script writes), or at the next message when
   * `from` is not given. A message after the head is refused; expired ones are skipped.
   */
  async subscribe(name: string, script: string, from?: number): Promise<SubscriptionAdded> {
    this.#notSystem(name);
    this.#checkScripts([script]);
    let start = 0, head = 0;
    // What an earlier subscription left of its runs goes first, while the script is not subscribed: once
    // it is, a publish starts its replay, whose first runs' records must not be forgotten with the old ones.
    const before = await this.options.channels.get(name);
    // (Not when the add is refused below: a refusal leaves the old records as they were.)
    const refused = before && (before.subscribers.includes(script) || before.subscribers.length >= MAX_SUBSCRIBERS);
    if (from !== undefined && before && !refused) {
      await this.#settled(name, [script]);
      await this.#forgetRuns(name, script, from);
    }
    const updated = await this.options.channels.update(name, async (current) => {
      if (current.subscribers.includes(script)) {
        throw new ConflictError(`Script "${script}" already subscribes to channel "${name}"`);
      }
      if (current.subscribers.length >= MAX_SUBSCRIBERS) {
        throw new ValidationError(`Channel "${name}" has ${MAX_SUBSCRIBERS} subscriber scripts, the most it may have`);
      }
      const config: ChannelConfig = { ...current, subscribers: [...current.subscribers, script] };
      head = await this.#head(name);
      start = from ?? head + 1;
      if (start > head + 1) {
        throw new ValidationError(`from must be at most ${head + 1}: channel "${name}" has ${head} message(s)`);
      }
      return { config, starts: await this.#starts(name, [script], start) };
    });
    if (!updated) throw new NotFoundError(`Channel "${name}" does not exist`);
    this.#forget(name, [script]);
    this.options.lanes.wake(this.#lane(name, script));
    return { channel: name, script, from: start, head };
  }

  /**
   * Drops what a paused channel has queued: its tasks, and the messages its subscriber scripts have not run (its
   * topic's followers and log keep them). Paused first, so that nothing of it runs meanwhile.
   */
  async purge(name: string): Promise<{ purged: number; streams: number; busy: number }> {
    this.#notSystem(name);
    const channel = await this.options.channels.get(name);
    if (!channel) throw new NotFoundError(`Channel "${name}" does not exist`);
    if (!channel.paused) {
      throw new ConflictError(
        `Channel "${name}" is not paused: pause it first (PATCH /admin/channels/${name} {"paused": true}), so that ` +
          "nothing of it runs while its queue is dropped",
      );
    }
    const { tasks, lanes, busy } = await this.options.lanes.purgeChannel(name);
    return { purged: tasks, streams: lanes, busy };
  }

  async delete(name: string): Promise<void> {
    this.#notSystem(name);
    const current = await this.options.channels.get(name);
    if (!current || !(await this.options.channels.delete(name))) {
      throw new NotFoundError(`Channel "${name}" does not exist`);
    }
    this.#forget(name, current.subscribers);
  }

  #notSystem(name: string): void {
    if (isSystemChannel(name)) throw new ForbiddenError(`Channel "${name}" belongs to Sluice`);
  }

  #checkScripts(scripts: readonly string[]): void {
    for (const s of scripts) {
      if (!this.options.scripts.has(s)) throw new ValidationError(`Unknown script "${s}"`);
    }
  }

  /**
   * Cursors for the subscriber scripts being added, so that each starts at message `from` (by
   * default the topic's next), and no retry. A script removed a moment ago may still be finishing a
   * batch here, which moves its cursor: that lands first. (With several instances, one running
   * elsewhere is not waited for.)
   */
  async #starts(name: string, added: readonly string[], from?: number): Promise<SubscriberStarts> {
    if (added.length === 0) return [];
    await this.#settled(name, added);
    const stream = topicStream(name);
    const start = from ?? await this.#head(name) + 1;
    return added.flatMap((s) => [
      // Its own cursor, 0 included: `GET /tasks/:id` knows its runs by it.
      { key: keys.cursor(stream, subscriberConsumer(s)), value: start - 1 },
      // What came before is not its (absent: from 1).
      { key: keys.subscribedFrom(stream, subscriberConsumer(s)), value: start > 1 ? start : undefined },
      { key: keys.retry(stream, subscriberConsumer(s)) }, // a retry left from when it was removed
      { key: keys.purged(stream, subscriberConsumer(s)) }, // runs a purge dropped run again if replayed
    ]);
  }

  /**
   * Waits for the batches the scripts' earlier subscriptions are still running here; a 409 when one
   * goes on past the wait (it would land after the new start and move the cursor back).
   */
  async #settled(name: string, scripts: readonly string[]): Promise<void> {
    const settled = await Promise.all(scripts.map((s) => this.options.lanes.settle(this.#lane(name, s))));
    const busy = scripts.find((_, i) => !settled[i]);
    if (busy !== undefined) {
      throw new ConflictError(
        `Script "${busy}" is still running a batch of channel "${name}" from before it was removed; ` +
          "add it again once that is done (a few seconds)",
      );
    }
  }

  /**
   * Forgets what an earlier subscription of the script left of its runs from `from` on (dead
   * letters, discards, retry indexes, results kept): a replay runs those messages anew under the same
   * run ids, which must not show the old run's end (nor be retried from the dead letters on top of it).
   * A 409 while such a run, retried from the dead letters, still waits in the channel's `_retry`
   * queue: it would end under the same id after the replay's run.
   */
  async #forgetRuns(name: string, script: string, from: number): Promise<void> {
    const prefix = subscriberRunPrefix(topicStream(name));
    const stale: Deno.KvKey[] = [];
    const retried: { id: string; stream: string; seq: number }[] = [];
    const indexes = keys.taskIndexes();
    for (const root of [keys.deadLetters(), keys.discardedAll(), indexes, keys.taskResults()]) {
      const range = { start: [...root, prefix], end: [...root, `${prefix}\uffff`] };
      for await (const e of this.options.kv.list(range)) {
        const id = String(e.key.at(-1));
        const run = subscriberRunOf(id);
        if (run?.script !== script || run.seq < from) continue;
        stale.push(e.key);
        if (root === indexes) {
          const at = e.value as { stream: string; seq: number };
          retried.push({ id, stream: at.stream, seq: at.seq });
        }
      }
    }
    const cursors = await Promise.all(
      chunked(retried).map((c) => this.options.kv.getMany<number[]>(c.map((r) => keys.cursor(r.stream)))),
    );
    for (const [i, cursor] of cursors.flat().entries()) {
      const r = retried[i]!;
      if (r.seq > (cursor.value ?? 0)) {
        throw new ConflictError(
          `Run ${r.id} of script "${script}", retried from the dead letters, is still queued; replay once it is ` +
            `done (GET /tasks/${r.id}), or dead again and discarded`,
        );
      }
    }
    await deleteKeys(this.options.kv, stale);
  }

  /** The topic's head; its key may lag the events (one writer writes it lazily, a crash can leave it behind). */
  async #head(name: string): Promise<number> {
    const stream = topicStream(name);
    return this.options.headOf(stream, await trueHead(this.options.kv, stream));
  }

  #forget(name: string, scripts: readonly string[]): void {
    for (const s of scripts) this.options.lanes.forget(this.#lane(name, s));
  }

  #lane(name: string, script: string): Lane {
    return { stream: topicStream(name), consumer: subscriberConsumer(script) };
  }
}
