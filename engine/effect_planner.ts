import { valueSize } from "../core/kv_size.ts";
import type { PumpCommand, PumpEvent } from "../actors/pump/events.ts";
import type { PumpState } from "../actors/pump/decider.ts";
import type { ActorRuntime } from "../actors/runtime.ts";
import { ForbiddenError, NotFoundError, PayloadTooLargeError, ValidationError } from "../core/errors.ts";
import { CHANNEL_NAME, DEVICE_ID, DEVICE_ID_RULE, isSystemChannel } from "../core/names.ts";
import { pumpStream, taskStream, topicStream } from "../core/streams.ts";
import {
  MESSAGE_PUBLISHED,
  type MessagePublishedData,
  partitionOf,
  TASK_QUEUED,
  type TaskQueuedData,
} from "../core/tasks.ts";
import type { ChannelRegistry } from "../store/channel_registry.ts";
import { keys } from "../store/keys.ts";
import type { DocumentRead, Effect } from "./script_api.ts";
import { WritePlan } from "./write_plan.ts";

/** Streams appended to and documents read by one run, together (KV: 100 checks a commit, some kept for Sluice). */
export const MAX_RUN_GUARDS = 90;

/** Who caused the effects: the task (or inline call) whose script produced them. */
export interface EffectSource {
  readonly device: string | null;
  readonly receivedAt: number;
  readonly taskId?: string;
  /** The script runs the run's task or message may still lead to, itself included (absent: `MAX_CHAIN_WORK`). */
  readonly budget?: number;
}

export interface EffectPlannerOptions {
  readonly channels: ChannelRegistry;
  readonly scripts: ReadonlySet<string>;
  readonly pumps: ActorRuntime<PumpState, PumpCommand, PumpEvent>;
  readonly maxValueBytes: number;
  readonly topicRetentionMs: number;
  /** How long a queued task (and its id's index key) is kept (undefined: for good). */
  readonly taskRetentionMs?: number;
  /** The script runs one sender's message may lead to in all (`MAX_CHAIN_WORK`): past it, a loop is assumed. */
  readonly maxChainWork: number;
}

/** Turns a script run's buffered effects into writes; an invalid effect fails the run. */
export class EffectPlanner {
  constructor(private readonly options: EffectPlannerOptions) {}

  /** The writes of a run; `reads` become checks, so a document changed meanwhile fails the commit. */
  async plan(
    effects: readonly Effect[],
    source: EffectSource,
    reads: readonly DocumentRead[] = [],
  ): Promise<WritePlan> {
    const plan = new WritePlan();
    const share = this.#share(effects, source);
    for (const effect of effects) await this.#planOne(effect, source, plan, share);
    for (const r of reads) plan.checks.push({ key: keys.document(r.collection, r.id), versionstamp: r.versionstamp });
    // Where instances share the KV (Deploy), each stream appended to is checked in the commit, as each document
    // read is: one commit takes 100 checks. Refused in every mode, so a script behaves the same here and there.
    const guarded = new Set(plan.appends.map((a) => a.stream)).size + plan.checks.length;
    if (guarded > MAX_RUN_GUARDS) {
      throw new ValidationError(
        `A run may write to at most ${MAX_RUN_GUARDS} pumps, task queues and topics and the documents it read, ` +
          `together; this one has ${guarded} (one KV commit takes 100 checks where instances share the KV)`,
      );
    }
    return plan;
  }

  /**
   * What each task or message the run makes may lead to: an equal share of what its own work may still lead to, less
   * its own run. So all the work one sender's message leads to, however it branches, is at most `MAX_CHAIN_WORK` runs;
   * a run that would make work with no share left is refused (a loop, surely).
   */
  #share(effects: readonly Effect[], source: EffectSource): number {
    const made = effects.filter((e) => e.kind === "queue" || e.kind === "publish").length;
    if (made === 0) return 0;
    return this.#portion((source.budget ?? this.options.maxChainWork) - 1, made, `queue or publish ${made} more`);
  }

  /** A message's share for each of its channel's subscriber scripts. */
  #perSubscriber(share: number, subscribers: number, channel: string): number {
    return this.#portion(
      share,
      Math.max(1, subscribers),
      `publish on ${channel} for its ${subscribers} subscriber scripts`,
    );
  }

  /** `left` split in `parts`, each at least one run, else the work is refused: `what` the run would do. */
  #portion(left: number, parts: number, what: string): number {
    const each = Math.floor(left / parts);
    if (each >= 1) return each;
    throw new ValidationError(
      `Loop? This run would ${what}, past the ${this.options.maxChainWork} script runs that one sender's message may ` +
        "lead to in all (MAX_CHAIN_WORK): a script that queues itself, or subscribers that publish on their own " +
        "channels, go on for ever; raise MAX_CHAIN_WORK if the work is meant",
    );
  }

  async #planOne(effect: Effect, source: EffectSource, plan: WritePlan, share: number): Promise<void> {
    switch (effect.kind) {
      case "queue": {
        const channel = await this.#channel(effect.channel);
        if (!this.options.scripts.has(effect.script)) throw new NotFoundError(`Unknown script "${effect.script}"`);
        const stream = taskStream(channel.name, partitionOf(channel.ordering, source.device));
        const data: TaskQueuedData = {
          method: effect.script,
          params: effect.body,
          device: source.device,
          taskId: effect.taskId,
          receivedAt: source.receivedAt,
          protocol: "script",
          budget: share,
        };
        plan.append(stream, { type: TASK_QUEUED, data }, undefined, undefined, this.#fits(data, "queued task"));
        plan.setFromLastAppend(keys.taskIndex(effect.taskId), (p) => p, this.options.taskRetentionMs);
        plan.wake.add(stream);
        return;
      }
      case "publish": {
        const channel = await this.#channel(effect.channel);
        const data: MessagePublishedData = {
          message: effect.message,
          sender: source.device ?? "_script",
          protocol: "script",
          // Each subscriber script runs it: they share it.
          budget: this.#perSubscriber(share, channel.subscribers.length, channel.name),
        };
        const size = this.#fits(data, "message");
        plan.append(
          topicStream(channel.name),
          { type: MESSAGE_PUBLISHED, data },
          undefined,
          this.options.topicRetentionMs,
          size,
        );
        if (channel.subscribers.length > 0) plan.wake.add(topicStream(channel.name));
        return;
      }
      case "saveDocument":
        this.#fits(effect.doc, "document");
        plan.sets.push({ key: keys.document(effect.collection, effect.id), value: effect.doc });
        return;
      case "deleteDocument":
        plan.deletes.push(keys.document(effect.collection, effect.id));
        return;
      case "recordReading": {
        // Checked here, not only at the HTTP routes: an id they refuse could be written but never read.
        if (!DEVICE_ID.test(effect.pumpId)) {
          const id = effect.pumpId.length > 80 ? `${effect.pumpId.slice(0, 80)}…` : effect.pumpId;
          throw new ValidationError(`Pump id "${id}" is not valid: ${DEVICE_ID_RULE}`);
        }
        const events = await this.options.pumps.decide(effect.pumpId, {
          type: "RecordReading",
          reading: effect.reading,
          receivedAt: source.receivedAt,
          taskId: source.taskId,
        });
        for (const event of events) {
          const size = this.#fits(event.data, "reading");
          plan.append(
            pumpStream(effect.pumpId),
            event,
            (position, at) => {
              this.options.pumps.applyCommitted(effect.pumpId, [{ ...event, seq: position.seq, at }]);
            },
            undefined,
            size,
          );
        }
        return;
      }
      default: {
        const never: never = effect;
        throw new Error(`Unknown effect ${JSON.stringify(never)}`);
      }
    }
  }

  async #channel(name: string) {
    if (!CHANNEL_NAME.test(name)) throw new ValidationError(`Invalid channel name "${name.slice(0, 80)}"`);
    if (isSystemChannel(name)) throw new ForbiddenError(`Channel "${name}" belongs to Sluice`);
    const channel = await this.options.channels.get(name);
    if (!channel) throw new NotFoundError(`Channel "${name}" does not exist`);
    return channel;
  }

  /**
   * The value's JSON size; over KV's value limit, a `PayloadTooLargeError`. A big value is measured
   * as KV stores it too, which may be several times its JSON (two-byte text, fractional numbers).
   */
  #fits(value: unknown, what: string): number {
    const size = JSON.stringify(value)?.length ?? 0;
    const max = this.options.maxValueBytes;
    const stored = size > max / 5 ? valueSize(value) : size; // "-0," is 3 characters and 9 bytes
    if (Math.max(size, stored) > max) {
      const as = stored > size ? " as KV stores it" : "";
      throw new PayloadTooLargeError(`The ${what} is ${Math.max(size, stored)} bytes${as}, over the limit of ${max}`);
    }
    return size;
  }
}
