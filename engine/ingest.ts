import type { Clock } from "../core/clock.ts";
import { type Envelope, type IngestResult, type Protocol, senderOf } from "../core/envelope.ts";
import {
  ConcurrencyError,
  ForbiddenError,
  MalformedJsonError,
  NotFoundError,
  PayloadTooLargeError,
  RateLimitedError,
  SluiceError,
  UnauthorizedError,
  ValidationError,
} from "../core/errors.ts";
import { normaliseInvoke } from "../core/invoke_body.ts";
import { isSystemChannel } from "../core/names.ts";
import type { RateLimiter } from "../core/rate_limiter.ts";
import { taskStream, topicStream } from "../core/streams.ts";
import { positionalTaskId } from "../core/task_id.ts";
import {
  MESSAGE_PUBLISHED,
  type MessagePublishedData,
  partitionOf,
  TASK_QUEUED,
  type TaskQueuedData,
} from "../core/tasks.ts";
import type { ChannelConfig, ChannelRegistry } from "../store/channel_registry.ts";
import type { Committer, Position, SetOp, WriteRequest, WriteResult } from "../store/committer.ts";
import { keys } from "../store/keys.ts";
import { idOf, type SeenIds } from "../store/seen_ids.ts";
import { utf8Length, utf8Over, valueSize } from "../core/kv_size.ts";

export interface IngestOptions {
  readonly kv: Deno.Kv;
  readonly committer: Committer;
  readonly channels: ChannelRegistry;
  readonly scripts: ReadonlySet<string>;
  readonly clock: Clock;
  readonly dedupWindowMs: number;
  /** Several instances append: the dedup key is checked in the commit, not only read before. */
  readonly multiWriter?: boolean;
  /** One writer's record of the message ids it may have stored: a new id needs no read. */
  readonly seenIds?: SeenIds;
  readonly topicRetentionMs: number;
  readonly maxBodyBytes: number;
  readonly rateLimiter?: RateLimiter;
  /** Told of every accepted envelope (duplicates included) and how long it took to commit (ms). */
  readonly onAccepted?: (envelope: Envelope, result: IngestResult, ms: number) => void;
  /** Told of every refused message, here or at the edge (`refused`), with the error code. */
  readonly onRefused?: (protocol: Protocol, code: string) => void;
}

/** Queues a commit's write (and says so to the caller of `accept`). */
type Write = (req: WriteRequest) => Promise<WriteResult>;

/**
 * The one ingest path of every protocol: checks the channel and the body, deduplicates by message
 * id, appends to the right stream through the group commit, and answers after the commit.
 */
export class Ingest {
  /** Message ids looked up in KV, and those `seenIds` showed to be new without a read. */
  readonly dedupLookups = { read: 0, skipped: 0 };
  readonly #inflight = new Map<string, Promise<IngestResult>>();

  constructor(private readonly options: IngestOptions) {}

  /**
   * Commits an envelope; throws a `SluiceError` for anything it refuses. `queued` is called once
   * its write is queued for a commit (its seq then follows every write queued before): a protocol
   * that keeps a connection's order starts the next message then, without waiting for the commit.
   */
  async accept(envelope: Envelope, queued?: () => void): Promise<IngestResult> {
    const start = performance.now();
    try {
      const result = await this.#accept(envelope, queued);
      this.options.onAccepted?.(envelope, result, performance.now() - start);
      return result;
    } catch (err) {
      // A broker's message KV could not take yet is taken again in place: not a refusal.
      if (!(envelope.brokered && isRetriedInPlace(err))) this.refused(envelope.protocol, err);
      throw err;
    }
  }

  /**
   * Counts a refused message: ingest's own refusals, and those a protocol made before the message
   * became an envelope (unreadable, too big, too deep).
   */
  refused(protocol: Protocol, err: unknown): void {
    this.options.onRefused?.(protocol, err instanceof SluiceError ? err.code : "internal");
  }

  async #accept(envelope: Envelope, queued?: () => void): Promise<IngestResult> {
    const channel = await this.#channel(envelope);
    if (
      !envelope.brokered && this.options.rateLimiter && !this.options.rateLimiter.take(senderOf(envelope.principal))
    ) {
      throw new RateLimitedError();
    }
    // A JSON string came with its quotes over HTTP and WebSocket (not a text body taken as it came, nor MQTT's or AMQP's).
    const quoted = !envelope.unparsedText && (envelope.protocol === "http" || envelope.protocol === "ws");
    const size = this.#checkSize(envelope.body, quoted);
    const write = (req: WriteRequest) => {
      const landed = this.options.committer.write(req);
      queued?.();
      return landed;
    };
    if (envelope.kind === "invoke") return this.#invoke(envelope, channel, size, write);
    return this.#publish(envelope, channel, size, write);
  }

  async #channel(envelope: Envelope): Promise<ChannelConfig> {
    const { principal, kind } = envelope;
    if (isSystemChannel(envelope.channel)) {
      throw new ForbiddenError(`Channel "${envelope.channel}" belongs to Sluice; only Sluice publishes there`);
    }
    const channel = await this.options.channels.get(envelope.channel);
    if (!channel) throw new NotFoundError(`Channel "${envelope.channel}" does not exist`);
    if (kind === "invoke" && principal.kind !== "device") {
      throw principal.kind === "anonymous"
        ? new UnauthorizedError("Queueing a task needs a device token")
        : new ForbiddenError("Queueing a task needs a device token (the admin token is not a device)");
    }
    if (kind === "message" && principal.kind === "anonymous" && !channel.anonymousPublish) {
      throw new UnauthorizedError(`Channel "${channel.name}" does not accept anonymous messages`);
    }
    return channel;
  }

  #invoke(envelope: Envelope, channel: ChannelConfig, size: number, write: Write): Promise<IngestResult> {
    if (envelope.unparsedText && !channel.defaultScript) {
      throw new MalformedJsonError(`Payload is not JSON and channel "${channel.name}" has no default script`);
    }
    const invoke = normaliseInvoke(envelope.body, channel.defaultScript);
    if (!this.options.scripts.has(invoke.method)) throw new NotFoundError(`Unknown script "${invoke.method}"`);
    const device = senderOf(envelope.principal);
    const stream = taskStream(channel.name, partitionOf(channel.ordering, device));
    const data: TaskQueuedData = {
      method: invoke.method,
      params: invoke.params,
      device,
      receivedAt: envelope.receivedAt,
      protocol: envelope.protocol,
    };
    return this.#once(envelope, invoke.id, (sets, checks) =>
      write({
        urgent: true,
        appends: [{ stream, event: { type: TASK_QUEUED, data }, size: size + 128 }],
        sets,
        checks,
        wake: [stream],
      }));
  }

  #publish(envelope: Envelope, channel: ChannelConfig, size: number, write: Write): Promise<IngestResult> {
    // An HTTP body with nothing in it is a mistake (MQTT carries an empty payload as a null message).
    if (envelope.body === undefined) throw new ValidationError("Message body is empty: send a JSON value");
    const stream = topicStream(channel.name);
    const data: MessagePublishedData = {
      message: envelope.body,
      sender: senderOf(envelope.principal),
      protocol: envelope.protocol,
    };
    return this.#once(envelope, undefined, (sets, checks) =>
      write({
        urgent: true,
        checks,
        appends: [{
          stream,
          event: { type: MESSAGE_PUBLISHED, data },
          expireIn: this.options.topicRetentionMs,
          size: size + 64,
        }],
        sets,
        wake: channel.subscribers.length > 0 ? [stream] : [],
      }));
  }

  /**
   * Commits once per (sender, message id) within the dedup window; a resend gets the first
   * answer. Concurrent resends wait for the first; later ones read the dedup key, which holds
   * the position the first one got.
   */
  async #once(
    envelope: Envelope,
    bodyId: string | undefined,
    commit: (dedupSets: SetOp[], checks?: Deno.AtomicCheck[]) => Promise<WriteResult>,
  ): Promise<IngestResult> {
    const id = this.#messageId(envelope.id, bodyId);
    const answer = (p: Position, duplicate: boolean): IngestResult =>
      envelope.kind === "invoke"
        ? { kind: "invoke", taskId: positionalTaskId(p.stream, p.seq), duplicate }
        : { kind: "message", seq: p.seq, duplicate };
    if (id === undefined) return answer((await commit([])).positions[0]!, false);
    const sender = senderOf(envelope.principal);
    const key = keys.dedup(sender, id);
    const flight = idOf(sender, id);
    const otherKind = () => new ValidationError(`Message id "${id}" was already used for another kind of message`);
    /** The answer to a resend of what went to `p`; another kind of message is refused. */
    const again = (p: Position): IngestResult => {
      if (p.stream.startsWith("t/") !== (envelope.kind === "invoke")) throw otherKind();
      return answer(p, true);
    };
    const running = this.#inflight.get(flight);
    if (running) {
      // A resend sent while the first is being committed: the first's answer, if it is of the same kind.
      const first = await running;
      if (first.kind !== envelope.kind) throw otherKind();
      return { ...first, duplicate: true };
    }
    const promise = (async () => {
      const prior = await this.#prior(key, flight);
      if (prior) return again(prior);
      const dedup: SetOp = { key, derive: (p) => p[0], expireIn: this.options.dedupWindowMs, withMove: true };
      this.options.seenIds?.add(flight);
      try {
        const res = await commit([dedup], this.options.multiWriter ? [{ key, versionstamp: null }] : []);
        return answer(res.positions[0]!, false);
      } catch (err) {
        // Another instance committed the same id first: answer what it got.
        const first = err instanceof ConcurrencyError ? (await this.options.kv.get<Position>(key)).value : null;
        if (first) return again(first);
        throw err;
      }
    })();
    this.#inflight.set(flight, promise);
    try {
      return await promise;
    } finally {
      this.#inflight.delete(flight);
    }
  }

  /**
   * Where an earlier sending of a message id went: nowhere for an id surely never stored (no
   * look-up); a first sending still in the inbox has its key in memory; else it is in KV.
   */
  async #prior(key: Deno.KvKey, id: string): Promise<Position | null> {
    if (this.options.seenIds?.mayHave(id) === false) {
      this.dedupLookups.skipped++;
      return null;
    }
    const unmoved = this.options.committer.withMove<Position>(key);
    if (unmoved) return unmoved;
    this.dedupLookups.read++;
    return (await this.options.kv.get<Position>(key)).value;
  }

  #messageId(outer: string | undefined, inner: string | undefined): string | undefined {
    if (outer !== undefined && inner !== undefined && outer !== inner) {
      throw new ValidationError(`Message id given twice with different values ("${outer}" and "${inner}")`);
    }
    return outer ?? inner;
  }

  /**
   * The body's JSON size in characters (measured once; the committer reuses it); a 413 when its UTF-8 is over the
   * limit, whatever protocol brought it. Text is counted as it came: `quoted`, a JSON string with its two quotes
   * (HTTP, WebSocket); MQTT and AMQP carry it without.
   */
  #checkSize(body: unknown, quoted: boolean): number {
    const text = typeof body === "string";
    const json = text ? body : JSON.stringify(body) ?? "";
    const max = this.options.maxBodyBytes;
    const quotes = text && quoted ? 2 : 0;
    if (utf8Over(json, max - quotes)) {
      throw new PayloadTooLargeError(`Message is ${utf8Length(json) + quotes} bytes, over the limit of ${max}`);
    }
    // KV stores it with V8's serializer, up to about 3.25 × its JSON: measured only when that could pass the limit.
    if (json.length * 4 > STORED_BODY_LIMIT) {
      const stored = valueSize(body);
      if (stored > STORED_BODY_LIMIT) {
        throw new PayloadTooLargeError(
          `Message is ${utf8Length(json)} bytes, but ${stored} as KV stores it, over the ${STORED_BODY_LIMIT} a ` +
            `message may take there (text with a character beyond U+00FF takes 2 bytes a character, a number with a ` +
            `fraction 9 bytes)`,
        );
      }
    }
    return json.length + (text ? 2 : 0); // a string's quotes, once stored as JSON
  }
}

/** What a message's body may take as KV stores it: KV's 64 KiB a value, less room for the event around it. */
const STORED_BODY_LIMIT = 65_536 - 1_024;

/** What a brokered protocol (AMQP, an external MQTT broker) takes again later rather than refuse. */
function isRetriedInPlace(err: unknown): boolean {
  return err instanceof SluiceError && (err.code === "unavailable" || err.code === "lease_lost");
}
