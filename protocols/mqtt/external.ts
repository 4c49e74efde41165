import { Buffer } from "node:buffer";
import mqtt, { type IPublishPacket, type MqttClient } from "mqtt";
import { describeError } from "../../core/errors.ts";
import { sleep } from "../../core/sleep.ts";
import type { Sluice } from "../../sluice.ts";
import { type Publish, type Republisher, republisherOf } from "../republisher.ts";
import { settleWithin } from "../settle.ts";
import { KvLease } from "../kv_lease.ts";
import type { MqttAdapter } from "./mqtt_adapter.ts";
import { encodeMessage } from "./payload.ts";
import type { PublishHandler } from "./publish_handler.ts";
import { messagesTopic } from "./routes.ts";
import type { Session } from "./session.ts";

const LEASE_KEY: Deno.KvKey = ["mqtt", "external_subscriber"];
const CLIENT_ID_KEY: Deno.KvKey = ["mqtt", "external_client_id"];
const LEASE_TTL_MS = 10_000;
const RENEW_MS = 3_000;
const MAX_BACKOFF_MS = 10_000;
/** How long messages in flight get to commit (and be acknowledged) when the connection ends. */
const CLOSE_WAIT_MS = 2_000;
/** How long the broker gets to take the DISCONNECT (and acknowledge re-publishes) before the connection is dropped. */
const END_WAIT_MS = 1_000;
/** How often the channel list is read for channels to re-publish (ms). */
const CHANNEL_POLL_MS = 2_000;
/** A failure whose reason does not change is logged again after this long. */
const REPEAT_LOG_MS = 60_000;
/** Sluice cannot see who connected to an external broker: the topic's token says who sends. */
const EXTERNAL: Session = { principal: null, external: true, revoked: false };
/** Only `<token>/<channel>/…` routes: two-level topics (Sluice's own re-publishes) are never read back. */
const FILTERS = { "+/+/invoke": { qos: 1 as const }, "+/+/messages": { qos: 1 as const } };

/**
 * External-broker mode (`MQTT_URL`): one Sluice instance at a time (a KV lease) subscribes to
 * `+/+/invoke` and `+/+/messages` with a persistent session (clean = false, a client id kept in
 * KV), handles one message at a time and sends its PUBACK only after the commit (mqtt.js'
 * `handleMessage` holds it back), reconnecting with backoff. While it holds the lease, topic
 * messages are re-published on `<channel>/messages`, resuming after the last one the broker
 * acknowledged when the connection comes back.
 */
export async function startExternal(sluice: Sluice, handler: PublishHandler): Promise<MqttAdapter> {
  const url = sluice.config.MQTT_URL!;
  const clientId = await externalClientId(sluice.kv);
  const subscriber = new ExternalSubscriber(sluice, handler, url, clientId);
  subscriber.start();
  sluice.log.info(`MQTT: using the external broker ${redacted(url)} (client id ${clientId})`);
  return {
    name: "mqtt",
    mode: "external",
    port: null,
    clientId,
    stats: handler.stats,
    get ready() {
      return subscriber.subscribed;
    },
    health: () => subscriber.health(),
    close: async () => {
      await subscriber.close();
      handler.close();
    },
  };
}

class ExternalSubscriber {
  readonly #lease: KvLease;
  readonly #inflight = new Set<Promise<void>>();
  readonly #stop = new AbortController();
  readonly #where: string;
  #client: MqttClient | null = null;
  /** Follows the channels while this instance holds the lease. */
  #republisher: Republisher | null = null;
  #loop: Promise<void> = Promise.resolve();
  #reconnect: ReturnType<typeof setTimeout> | undefined;
  #attempt = 0;
  /** Set after a message could not be committed: the rest of the connection's messages are not acked. */
  #broken = false;
  /** Why the current connection (attempt) failed, for the log. */
  #failure: string | null = null;
  /** The failure logged last, so one that goes on is not logged at every attempt. */
  #logged: { reason: string; at: number } | null = null;
  #waitingForLease = false;
  subscribed = false;

  constructor(
    private readonly sluice: Sluice,
    private readonly handler: PublishHandler,
    private readonly url: string,
    private readonly clientId: string,
  ) {
    this.#lease = new KvLease(sluice.kv, LEASE_KEY, crypto.randomUUID(), LEASE_TTL_MS, sluice.clock);
    this.#where = redacted(url);
  }

  start(): void {
    this.#loop = this.#run();
  }

  /** Degraded until subscribed: while connecting, waiting for the lease, or the broker is away. */
  health(): "ok" | "degraded" {
    return this.subscribed ? "ok" : "degraded";
  }

  async close(): Promise<void> {
    this.#stop.abort();
    clearTimeout(this.#reconnect);
    await this.#loop;
    await this.#disconnect();
    await this.#lease.release().catch(() => {});
  }

  /** Holds (or waits for) the lease; the holder keeps one connection and re-publishes the channels. */
  async #run(): Promise<void> {
    const signal = this.#stop.signal;
    while (!signal.aborted) {
      let holding: boolean | null = null;
      try {
        holding = await this.#lease.claim();
      } catch (err) {
        this.sluice.log.warn(`MQTT subscriber lease cannot be renewed: ${describeError(err)}`);
      }
      if (signal.aborted) break;
      if (holding === false && !this.#waitingForLease) {
        this.sluice.log.info(
          `MQTT: waiting for the subscriber lease: another Sluice instance holds it (one stopped without ` +
            `giving it back holds it for up to ${LEASE_TTL_MS / 1000} s)`,
        );
      }
      this.#waitingForLease = holding === false;
      if (holding && !this.#client) await this.#connect();
      else if (!holding && this.#client) await this.#disconnect();
      await sleep(RENEW_MS, signal);
    }
  }

  /** Notes where each channel stands (re-publishing starts from there once subscribed), then connects. */
  async #connect(): Promise<void> {
    const republisher = republisherOf(this.sluice, "MQTT", {
      pollMs: CHANNEL_POLL_MS,
      onFailure: (reason) => {
        this.sluice.log.warn(`MQTT: ${reason}; reconnecting`);
        this.#client?.stream.destroy();
      },
    });
    try {
      await republisher.init();
    } catch (err) {
      this.sluice.log.warn(`MQTT: reading the channels to re-publish failed: ${describeError(err)}`);
      return; // the next round tries again
    }
    if (this.#stop.signal.aborted) return republisher.close();
    this.#republisher = republisher;
    this.#broken = false;
    this.#failure = null;
    const client = mqtt.connect(this.url, {
      clientId: this.clientId,
      clean: false,
      reconnectPeriod: 0, // reconnects are ours, with backoff
      connectTimeout: 10_000,
      keepalive: 30,
      resubscribe: false,
    });
    client.handleMessage = (packet, callback) => this.#handle(packet, callback);
    client.on("connect", () => {
      this.#attempt = 0;
      this.#broken = false;
      const closed = new Promise<never>((_, reject) => {
        client.once("close", () => reject(new Error("The connection closed")));
      });
      closed.catch(() => {});
      client.subscribe(FILTERS, (err) => this.#onSuback(client, publishOn(client, closed), err));
    });
    // Connection errors are followed by "close", which logs and reconnects; unheard they would throw.
    client.on("error", (err) => this.#failure ??= describeError(err));
    client.on("close", () => this.#onClose(client));
    this.#client = client;
  }

  /** Subscribed: re-publishing starts. Refused: the reason is logged and a new connection tries again. */
  #onSuback(client: MqttClient, publish: Publish, err: Error | null | undefined): void {
    if (this.#client !== client || !client.connected) return;
    if (err) {
      this.#failure = `subscribing to ${Object.keys(FILTERS).join(" and ")} failed: ${describeError(err)}`;
      client.stream.destroy();
      return;
    }
    this.subscribed = true;
    this.#logged = null;
    this.sluice.log.info(`MQTT: subscribed on ${this.#where}`);
    this.#republisher?.attach(publish).catch((e) => {
      this.sluice.log.warn(`MQTT: re-publishing cannot start: ${describeError(e)}; reconnecting`);
      client.stream.destroy();
    });
  }

  #onClose(client: MqttClient): void {
    if (this.#client !== client) return;
    const wasSubscribed = this.subscribed;
    this.subscribed = false;
    this.#republisher?.detach();
    if (this.#stop.signal.aborted) return;
    const reason = this.#failure;
    this.#failure = null;
    if (wasSubscribed) {
      this.sluice.log.warn(
        `MQTT: lost the external broker ${this.#where}${reason ? ` (${reason})` : ""}; reconnecting`,
      );
    } else {
      this.#failed(reason ?? "the connection closed before the subscription was made");
    }
    const delay = Math.min(MAX_BACKOFF_MS, 200 * 2 ** this.#attempt++);
    clearTimeout(this.#reconnect);
    this.#reconnect = setTimeout(() => {
      if (this.#client !== client || this.#stop.signal.aborted) return;
      this.#failure = null;
      client.reconnect();
    }, delay);
  }

  /** Logs why the broker cannot be used: the first time, when the reason changes, and once a minute while it lasts. */
  #failed(reason: string): void {
    const now = this.sluice.clock.now();
    if (this.#logged?.reason === reason && now - this.#logged.at < REPEAT_LOG_MS) return;
    this.#logged = { reason, at: now };
    this.sluice.log.warn(`MQTT: cannot use ${this.#where}: ${reason} (retrying)`);
  }

  #handle(packet: IPublishPacket, callback: (err?: Error) => void): void {
    if (this.#broken || this.#stop.signal.aborted) return callback(new Error("Not taking messages"));
    const payload = typeof packet.payload === "string" ? Buffer.from(packet.payload) : packet.payload;
    const work = this.handler.handle(EXTERNAL, packet.topic, payload).then((outcome) => {
      if (outcome.kind !== "retry") return callback();
      // Not committed: no PUBACK, and none for what follows; the broker sends them again after reconnecting.
      this.#broken = true;
      callback(new Error(outcome.reason));
      this.#client?.stream.destroy();
    }).catch((err) => this.sluice.log.error(`MQTT message handling failed: ${describeError(err)}`));
    this.#inflight.add(work);
    work.finally(() => this.#inflight.delete(work));
  }

  /**
   * Lets messages in flight commit and get their PUBACK, then ends the connection (the session
   * stays); a broker that does not take the DISCONNECT in time is dropped.
   */
  async #disconnect(): Promise<void> {
    const client = this.#client;
    if (!client) return;
    this.#broken = true;
    await settleWithin(Promise.allSettled([...this.#inflight]), CLOSE_WAIT_MS);
    this.#client = null;
    this.subscribed = false;
    this.#republisher?.close();
    this.#republisher = null;
    clearTimeout(this.#reconnect);
    if (!await settleWithin(client.endAsync(false), END_WAIT_MS)) client.end(true);
  }
}

/**
 * Re-publishes topic messages on `<channel>/messages` (QoS 1) over one connection; a message is
 * done at its PUBACK, and fails once that connection closes (mqtt.js would keep it for a
 * connection that never comes: its next connection starts with an empty store).
 */
function publishOn(client: MqttClient, closed: Promise<never>): Publish {
  return (m) => {
    if (!client.connected) return closed;
    const sent = client.publishAsync(messagesTopic(m.channel), Buffer.from(encodeMessage(m.message)), { qos: 1 });
    return Promise.race([sent.then(() => {}), closed]);
  };
}

/** The client id of Sluice's persistent session, chosen once per KV (so per installation). */
async function externalClientId(kv: Deno.Kv): Promise<string> {
  const fresh = `sluice-${crypto.randomUUID().slice(0, 8)}`;
  await kv.atomic().check({ key: CLIENT_ID_KEY, versionstamp: null }).set(CLIENT_ID_KEY, fresh).commit();
  return (await kv.get<string>(CLIENT_ID_KEY)).value ?? fresh;
}

/** A broker URL fit for a log line: scheme, host and port, never credentials. */
function redacted(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}`;
  } catch {
    return "(the MQTT_URL)";
  }
}
