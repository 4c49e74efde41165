import { type ChannelModel, connect } from "amqplib";
import { describeError } from "../../core/errors.ts";
import type { Logger } from "../../core/log.ts";
import { settleWithin } from "../settle.ts";

/** How long to wait before reconnecting: doubling from `initialMs` to `maxMs`, with jitter. */
export interface Backoff {
  readonly initialMs: number;
  readonly maxMs: number;
}

export interface ConnectionOptions {
  readonly url: string;
  /** Shown by RabbitMQ as the connection's name (`connection_name`). */
  readonly name: string;
  readonly log: Logger;
  /** Declares and starts what runs on a fresh connection; a throw drops the connection and retries. */
  readonly setup: (model: ChannelModel) => Promise<void>;
  /** Told when a connection that was set up (or being set up) is gone. */
  readonly teardown: () => void;
  readonly backoff?: Backoff;
}

/**
 * The heartbeat (s) asked for when `AMQP_URL` sets none (RabbitMQ's own is 60 s): a broker that
 * went silent with the TCP connection still open is noticed after two to three of them.
 */
export const DEFAULT_HEARTBEAT_S = 10;

/** How long a call to the broker on the way out may take before the connection is dropped instead. */
export const STOP_CALL_MS = 1000;

/** `url` with `heartbeat=` added unless it sets one itself. */
export function withHeartbeat(url: string): string {
  const u = new URL(url);
  if (u.searchParams.has("heartbeat")) return url;
  u.searchParams.set("heartbeat", String(DEFAULT_HEARTBEAT_S));
  return u.href;
}

/** A connect error in words: amqplib only says the handshake went wrong when RabbitMQ refuses the vhost. */
export function describeConnectError(err: unknown, url: string): string {
  const text = describeError(err);
  if (!/^Expected ConnectionOpenOk; got <ConnectionClose/.test(text)) return text;
  const path = new URL(url).pathname.slice(1);
  let vhost = path;
  try {
    vhost = decodeURIComponent(path);
  } catch { /* shown as written */ }
  return `RabbitMQ refused the virtual host "${vhost || "/"}": it does not exist, or the user may not use it`;
}

/** The broker's address without credentials, for log lines. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname === "/" ? "" : u.pathname}`;
  } catch {
    return "(invalid URL)";
  }
}

/**
 * Keeps one connection to RabbitMQ: connects, runs `setup`, and after a loss reconnects with
 * backoff and runs `setup` again. Sluice keeps serving while this retries.
 */
export class ReconnectingConnection {
  #model: ChannelModel | null = null;
  #ready = false;
  #closed = false;
  #wake: (() => void) | null = null;
  #loop: Promise<void> | null = null;
  /** Why the current connection ended: the first reset reason or connection error. */
  #lossReason: string | null = null;
  readonly #backoff: Backoff;
  readonly #where: string;

  constructor(private readonly options: ConnectionOptions) {
    this.#backoff = options.backoff ?? { initialMs: 100, maxMs: 10_000 };
    this.#where = redactUrl(options.url);
  }

  /** True while connected with `setup` done. */
  get ready(): boolean {
    return this.#ready;
  }

  start(): void {
    this.#loop ??= this.#run();
  }

  /** Drops the current connection (a channel failed, the consumer was cancelled); the loop makes a new one. */
  reset(reason: string): void {
    if (this.#closed || !this.#model) return;
    this.#lossReason ??= reason;
    void closeWithin(this.#model, STOP_CALL_MS);
  }

  /** Closes the connection (dropping it when RabbitMQ does not answer in time) and stops reconnecting. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#wake?.();
    if (this.#model) await closeWithin(this.#model, STOP_CALL_MS);
    // A connect in progress to an unresponsive host may take its full timeout: do not wait for it
    // (the loop closes that connection as soon as it lands).
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([this.#loop, new Promise((r) => timer = setTimeout(r, 1000))]);
    clearTimeout(timer);
  }

  async #run(): Promise<void> {
    let failures = 0;
    while (!this.#closed) {
      const ended = Promise.withResolvers<void>();
      try {
        const model = await connect(withHeartbeat(this.options.url), {
          clientProperties: { connection_name: this.options.name },
          timeout: 5000,
        });
        this.#model = model;
        // The broker's own reason wins over "a channel closed", which its channels report first. amqplib gives it
        // with "error", or only with "close" when it is not fatal (CONNECTION_FORCED: an operator closed it).
        const lost = (err?: Error) => {
          if (err) this.#lossReason = describeError(err);
        };
        model.on("error", lost);
        model.on("close", (err?: Error) => {
          lost(err);
          ended.resolve();
        });
        if (this.#closed) {
          await model.close().catch(() => {});
          break;
        }
        await this.options.setup(model);
        this.#ready = true;
        this.options.log.info(
          `AMQP: connected to ${this.#where}${failures > 0 ? ` after ${failures} attempt(s)` : ""}`,
        );
        failures = 0;
      } catch (err) {
        // Closed while it was being set up (Sluice stopping): its channels ending is no failure, and nothing is retried.
        if (!this.#closed && (failures === 0 || failures % 10 === 0)) {
          this.options.log.warn(
            `AMQP: cannot use ${this.#where}: ${describeConnectError(err, this.options.url)} (retrying)`,
          );
        }
        this.#model?.close().catch(() => {});
        ended.resolve();
      }
      if (this.#model) await ended.promise;
      const wasReady = this.#ready;
      this.#ready = false;
      this.#model = null;
      this.options.teardown();
      if (this.#closed) break;
      if (wasReady) {
        this.options.log.warn(
          `AMQP: connection to ${this.#where} lost (${this.#lossReason ?? "closed"}); reconnecting`,
        );
      }
      this.#lossReason = null;
      await this.#sleep(this.#delay(failures++));
    }
    this.#ready = false;
  }

  #delay(failures: number): number {
    const { initialMs, maxMs } = this.#backoff;
    const base = Math.min(maxMs, initialMs * 2 ** Math.min(failures, 20));
    return Math.round(base * (0.8 + Math.random() * 0.2));
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.#wake = done;
    });
  }
}

/**
 * Closes a connection; when RabbitMQ has not answered within `ms` (it went silent, TCP still open),
 * drops it instead: its socket is destroyed, and amqplib closes its channels and emits `close`.
 */
async function closeWithin(model: ChannelModel, ms: number): Promise<void> {
  if (await settleWithin(model.close(), ms)) return;
  const { stream } = model.connection as unknown as { stream: { destroy(err: Error): void } };
  stream.destroy(new Error(`RabbitMQ did not answer within ${ms} ms`));
}
