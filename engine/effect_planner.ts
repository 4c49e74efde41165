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
  /** Script runs in the chain that made the run's task or message (absent: 0). */
  readonly depth?: number;
}

export interface EffectPlannerOptions {
  readonly channels: ChannelRegistry;
  readonly scripts: ReadonlySet<string>;
  readonly pumps: ActorRuntime<PumpState, PumpCommand, PumpEvent>;
  readonly maxValueBytes: number;
  readonly topicRetentionMs: number;
  /** How long a queued task (and its id's index key) is kept (undefined: for good). */
  readonly taskRetentionMs?: number;
  /** The longest chain of script-made tasks and messages (`MAX_CHAIN_DEPTH`): past it, a loop is assumed. */
  readonly maxChainDepth?: number;
}

/** The longest chain of script-made work unless `MAX_CHAIN_DEPTH` says otherwise. */
export const MAX_CHAIN_DEPTH = 10_000;

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
    for (const effect of effects) await this.#planOne(effect, source, plan);
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

  /** The chain depth of what a run makes: one more than its own, refused past `MAX_CHAIN_DEPTH` (a loop, surely). */
  #depth(source: EffectSource, what: string): number {
    const depth = (source.depth ?? 0) + 1;
    const max = this.options.maxChainDepth ?? MAX_CHAIN_DEPTH;
    if (depth > max) {
      throw new ValidationError(
        `Loop? This run would ${what} as the work of a chain of ${depth} script runs, each made by the one before, ` +
          `over MAX_CHAIN_DEPTH (${max}): a script that queues itself, or subscribers that publish on their own ` +
          "channels, go on for ever; raise MAX_CHAIN_DEPTH if the chain is meant",
      );
    }
    return depth;
  }

  async #planOne(effect: Effect, source: EffectSource, plan: WritePlan): Promise<void> {
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
          depth: this.#depth(source, `queue ${effect.script} on ${channel.name}`),
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
          depth: this.#depth(source, `publish on ${channel.name}`),
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
