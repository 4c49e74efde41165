import { type ChannelModel, connect } from "amqplib";
import { describeError } from "../../core/errors.ts";
import type { Logger } from "../../core/log.ts";

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
    this.#model.close().catch(() => {});
  }

  /** Closes the connection and stops reconnecting. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#wake?.();
    await this.#model?.close().catch(() => {});
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
        const model = await connect(this.options.url, {
          clientProperties: { connection_name: this.options.name },
          timeout: 5000,
        });
        this.#model = model;
        model.on("error", (err: Error) => this.#lossReason ??= describeError(err));
        model.on("close", () => ended.resolve());
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
        if (failures === 0 || failures % 10 === 0) {
          this.options.log.warn(`AMQP: cannot use ${this.#where}: ${describeError(err)} (retrying)`);
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
