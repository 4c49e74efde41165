import type { Principal } from "../../core/envelope.ts";
import {
  ForbiddenError,
  MalformedJsonError,
  NotFoundError,
  SluiceError,
  UnauthorizedError,
  UnavailableError,
  ValidationError,
} from "../../core/errors.ts";
import { authorizeSubscribe } from "../../engine/access.ts";
import type { Subscription, TopicMessage } from "../../engine/topic_hub.ts";
import type { Sluice } from "../../sluice.ts";
import { principalOf } from "../http/auth.ts";
import {
  AuthenticateParams,
  type EndFrame,
  FrameId,
  PublishParams,
  type PushFrame,
  QueueParams,
  type ReplyFrame,
  RequestFrame,
  SubscribeParams,
  UnsubscribeParams,
} from "./frames.ts";
import { checkJson } from "../../core/json_check.ts";
import { scriptAt } from "../../engine/manifest.ts";
import { validate } from "../../core/validate.ts";
import { WaitingBudget } from "./waiting_budget.ts";

/** What a session needs from its socket. */
export interface SocketPort {
  send(text: string): void;
  bufferedAmount(): number;
  close(code: number, reason: string): void;
}

/** Close code and reason for a client that reads too slowly. */
export const SLOW_CONSUMER = { code: 1008, reason: "Client too slow: its send buffer is full" } as const;

/** Close code and reason for a client that sends faster than its frames can start. */
export const TOO_MANY_WAITING = { code: 1008, reason: "Too many frames waiting: wait for some replies" } as const;

/** Frames a session keeps waiting for their turn before it is closed (each up to MAX_BODY_BYTES). */
export const MAX_WAITING_FRAMES = 1000;

/**
 * Characters of frames a session keeps waiting before it is closed: 1,000 frames of 48 KiB were 49 MB
 * a connection, and a hundred connections without a token ran the process out of memory.
 */
export const MAX_WAITING_CHARS = 4 * 1024 * 1024;

/** Frames that manage the session; every other frame carries a message (counted as refused when it fails). */
const SESSION_METHODS: ReadonlySet<string> = new Set(["Authenticate", "Subscribe", "Unsubscribe"]);
/** The methods a frame names that are not scripts. */
const FRAME_METHODS = ["Authenticate", "Subscribe", "Unsubscribe", "Publish"] as const;

/** Close code and reason for a session whose device was revoked. */
export const REVOKED = { code: 1008, reason: "Device revoked" } as const;

/**
 * One WebSocket connection speaking the scriptr-style JSON protocol: Authenticate, Subscribe,
 * Unsubscribe, Publish, and any other method invokes a script (queued with `params.channel`,
 * inline for a public script without).
 */
export class WsSession {
  readonly #subs = new Map<string, Subscription>();
  #closed = false;
  /** The last `Authenticate` frame failed (its reply said why; later refusals say it again). */
  #authFailed = false;
  /** Resolves once the last frame handed to `handle` is admitted: the next one may start then. */
  #turn: Promise<void> = Promise.resolve();
  /** Frames handed to `handle` that have not started yet (behind an `Authenticate` held back, say). */
  #waiting = 0;
  /** Their characters. */
  #waitingChars = 0;

  constructor(
    private readonly sluice: Sluice,
    private readonly socket: SocketPort,
    private principal: Principal,
    private readonly maxBufferBytes: number,
    /** Checks an `Authenticate` frame's token (the adapter puts it under the brute-force throttle). */
    private readonly authenticate: (token: string) => Promise<Principal> = (token) =>
      principalOf(token, sluice.admin, sluice.devices),
    /** What frames waiting to start may hold across every session (the adapter shares one). */
    private readonly waitingBudget: WaitingBudget = new WaitingBudget(Infinity),
    /** Gives back the device's stream slot the adapter took for `principal` (`DeviceStreams`). */
    private release: () => void = () => {},
  ) {}

  /** The device the session speaks for now, or null (admin, anonymous). */
  get device(): string | null {
    return this.principal.kind === "device" ? this.principal.id : null;
  }

  /** True once the session ended (socket closed, device revoked): frames are no longer handled. */
  get disposed(): boolean {
    return this.#closed;
  }

  /**
   * Handles one text frame; always answers (unless the session ended meanwhile). Frames start in
   * the order they came, each once the one before is admitted: an `Authenticate`, `Subscribe` or
   * `Unsubscribe` once it is done (what follows sees its effect), a `Publish` or queued invoke once
   * its write is queued (so a connection's messages keep their order while their commits overlap),
   * a public script's call once it started. Answers may come out of order; the `id` tells them apart.
   */
  handle(text: string): Promise<void> {
    if (this.#closed) return Promise.resolve();
    const size = text.length;
    if (
      this.#waiting >= MAX_WAITING_FRAMES || this.#waitingChars + size > MAX_WAITING_CHARS ||
      !this.waitingBudget.take(size)
    ) {
      this.dispose();
      this.socket.close(TOO_MANY_WAITING.code, TOO_MANY_WAITING.reason);
      return Promise.resolve();
    }
    this.#waiting++;
    this.#waitingChars += size;
    const before = this.#turn;
    let admit!: () => void;
    this.#turn = new Promise((resolve) => admit = resolve);
    return this.#handle(text, size, before, admit);
  }

  async #handle(text: string, size: number, before: Promise<void>, admit: () => void): Promise<void> {
    await before;
    this.#waiting--;
    this.#waitingChars -= size;
    this.waitingBudget.give(size);
    if (this.#closed) return admit();
    let id: unknown = null;
    /** A frame that carries a message (not a session frame); `counted` once ingest or the script runner has it. */
    const frame = { message: true, counted: false };
    try {
      let raw: unknown;
      try {
        // A byte order mark before the JSON is dropped, as HTTP's and MQTT's UTF-8 decoding drops it.
        raw = JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
      } catch {
        throw new MalformedJsonError("Frame is not valid JSON");
      }
      const given = FrameId.safeParse((raw as { id?: unknown } | null)?.id);
      if (given.success) id = given.data; // a deep or huge id is not echoed (stringifying it can overflow the stack)
      checkJson(raw, "Frame");
      const request = RequestFrame.safeParse(raw);
      if (!request.success) throw new ValidationError('Frame must be {"id"?, "method", "params"}');
      frame.message = !SESSION_METHODS.has(request.data.method);
      this.#reply({ id, status: "success", result: await this.#dispatch(request.data, admit, frame) });
    } catch (err) {
      if (frame.message && !frame.counted) this.sluice.ingest.refused("ws", err);
      const error = err instanceof SluiceError
        ? { code: err.code, message: err.message + this.#whyAnonymous(err) }
        : { code: "internal", message: "Internal error" };
      if (!(err instanceof SluiceError)) this.sluice.log.error(`WebSocket request failed: ${String(err)}`);
      this.#reply({ id, status: "failure", error });
    } finally {
      admit();
    }
  }

  /**
   * A refusal for want of a token, on a session whose `Authenticate` failed: says so, since the
   * session acts anonymously (or as before) after it and the refusal alone does not tell why.
   */
  #whyAnonymous(err: SluiceError): string {
    if (!this.#authFailed || this.principal.kind !== "anonymous") return "";
    return err instanceof UnauthorizedError ? " (this session is anonymous: its Authenticate failed)" : "";
  }

  /** Ends the session's subscriptions. */
  dispose(): void {
    this.#closed = true;
    this.release();
    for (const s of this.#subs.values()) s.close();
    this.#subs.clear();
  }

  /**
   * Checks the subscriptions to `channel` (null: every channel) again after the channel changed:
   * one no longer allowed ends, and the client is told with a frame `{channel, status: "failure", error}`.
   */
  async recheck(channel: string | null): Promise<void> {
    for (const [ch, sub] of [...this.#subs]) {
      if (channel !== null && ch !== channel) continue;
      try {
        await authorizeSubscribe(this.sluice.channels, this.principal, ch);
      } catch (err) {
        if (!(err instanceof SluiceError) || this.#subs.get(ch) !== sub) continue;
        sub.close();
        this.#subs.delete(ch);
        const frame: EndFrame = { channel: ch, status: "failure", error: { code: err.code, message: err.message } };
        if (!this.#closed) this.socket.send(JSON.stringify(frame));
      }
    }
  }

  async #dispatch(frame: RequestFrame, admit: () => void, counted: { counted: boolean }): Promise<unknown> {
    switch (frame.method) {
      case "Authenticate": {
        const { token } = validate(AuthenticateParams, frame.params, "params");
        this.#authFailed = true; // until it succeeds
        const principal = await this.authenticate(token);
        this.#authFailed = false;
        if (principal.kind !== "device" || principal.id !== this.device) {
          const release = this.sluice.deviceStreams.take(principal); // the device's limit refuses it here
          this.release();
          this.release = this.#closed ? (release(), release) : release;
        }
        this.principal = principal;
        return { authenticated: principal.kind, ...(principal.kind === "device" ? { device: principal.id } : {}) };
      }
      case "Subscribe": {
        const { channel, from } = validate(SubscribeParams, frame.params, "params");
        await authorizeSubscribe(this.sluice.channels, this.principal, channel);
        await this.sluice.topics.checkStart(channel, from);
        this.#subs.get(channel)?.close();
        // The hub keeps the client at most a quarter of the buffer ahead, the rest waiting in the log.
        const room = () => this.socket.bufferedAmount() < this.maxBufferBytes / 4;
        // Sluice ended it (the channel's log could not be read): the client is told, as for a deleted channel.
        let sub: Subscription | undefined, endedEarly = false;
        const ended = (reason: string) => {
          if (sub === undefined) return void (endedEarly = true);
          if (this.#subs.get(channel) !== sub) return;
          this.#subs.delete(channel);
          const frame: EndFrame = { channel, status: "failure", error: { code: "unavailable", message: reason } };
          if (!this.#closed) this.socket.send(JSON.stringify(frame));
        };
        const subscription = sub = await this.sluice.topics.subscribe(channel, from, {
          deliver: (m) => this.#push(m),
          room,
          ended,
        });
        if (endedEarly) throw new UnavailableError(`Cannot follow ${channel} now; subscribe again`);
        if (this.#closed) subscription.close();
        else this.#subs.set(channel, subscription);
        // A change of the channel (deleted, anonymous subscribers turned off) while this subscribed was checked
        // against the subscriptions before this one joined them: checked again, now that it is one of them.
        await authorizeSubscribe(this.sluice.channels, this.principal, channel).catch((err) => {
          if (this.#subs.get(channel) === subscription) subscription.close(), this.#subs.delete(channel);
          throw err;
        });
        return { channel, head: await this.sluice.topics.head(channel) };
      }
      case "Unsubscribe": {
        const { channel } = validate(UnsubscribeParams, frame.params, "params");
        this.#subs.get(channel)?.close();
        this.#subs.delete(channel);
        return { channel };
      }
      case "Publish": {
        const { channel, message, id } = validate(PublishParams, frame.params, "params");
        counted.counted = true;
        const res = await this.sluice.ingest.accept({
          principal: this.principal,
          channel,
          kind: "message",
          body: message ?? null,
          id: id === undefined ? undefined : String(id),
          protocol: "ws",
          receivedAt: this.sluice.clock.now(),
        }, admit);
        return res.kind === "message" ? { seq: res.seq, ...(res.duplicate ? { duplicate: true } : {}) } : res;
      }
      default:
        return await this.#invoke(frame.method, frame.params, admit, counted);
    }
  }

  /** `{method: script, params}`: queued with `params.channel`, else a public script inline. */
  async #invoke(method: string, params: unknown, admit: () => void, counted: { counted: boolean }): Promise<unknown> {
    const frameMethod = FRAME_METHODS.find((m) => m.toLowerCase() === method.toLowerCase());
    const script = scriptAt(this.sluice.manifest, method);
    if (frameMethod && !script) {
      // "subscribe" would otherwise be taken for a script: queued on params.channel, it came back "Unknown script".
      throw new NotFoundError(`Unknown method "${method}": frame methods are case-sensitive, send "${frameMethod}"`);
    }
    const p = (typeof params === "object" && params !== null && !Array.isArray(params))
      ? params as Record<string, unknown>
      : null;
    if (p && p.channel !== undefined) {
      const { channel, id, ...rest } = validate(QueueParams, p, "params");
      counted.counted = true;
      const res = await this.sluice.ingest.accept({
        principal: this.principal,
        channel,
        kind: "invoke",
        body: { method, params: rest },
        id: id ?? undefined,
        protocol: "ws",
        receivedAt: this.sluice.clock.now(),
      }, admit);
      return res.kind === "invoke" ? { taskId: res.taskId, ...(res.duplicate ? { duplicate: true } : {}) } : res;
    }
    if (!script?.public) {
      if (script) {
        throw new NotFoundError(`Script "${method}" is not public: give params.channel to queue it there`);
      }
      throw new NotFoundError(`Unknown method "${method}": not a frame method nor a public script`);
    }
    if (this.principal.kind === "admin") throw new ForbiddenError("Calling a script needs a device token");
    if (this.principal.kind !== "device") throw new UnauthorizedError("Calling a script needs a device token");
    counted.counted = true;
    const call = this.sluice.inline.callFor("ws", method, params, this.principal.id, this.sluice.clock.now());
    admit();
    return await call;
  }

  #push(m: TopicMessage): void {
    if (this.#closed) return;
    if (this.socket.bufferedAmount() > this.maxBufferBytes) {
      this.sluice.log.warn(`WebSocket subscriber cut off: send buffer over ${this.maxBufferBytes} bytes`);
      this.sluice.instruments.cutOff("ws");
      this.dispose();
      this.socket.close(SLOW_CONSUMER.code, SLOW_CONSUMER.reason);
      return;
    }
    const frame: PushFrame = { channel: m.channel, seq: m.seq, message: m.message };
    this.socket.send(JSON.stringify(frame));
  }

  #reply(frame: ReplyFrame): void {
    if (!this.#closed) this.socket.send(JSON.stringify(frame));
  }
}
