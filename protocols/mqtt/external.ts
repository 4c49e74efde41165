import { Buffer } from "node:buffer";
import mqtt, { type IPublishPacket, type MqttClient } from "mqtt";
import { describeError } from "../../core/errors.ts";
import { isSystemChannel } from "../../core/names.ts";
import type { Sluice } from "../../sluice.ts";
import { settleWithin } from "../settle.ts";
import { KvLease } from "./lease.ts";
import type { MqttAdapter } from "./mqtt_adapter.ts";
import { encodeMessage } from "./payload.ts";
import type { PublishHandler } from "./publish_handler.ts";
import { messagesTopic } from "./routes.ts";
import type { Session } from "./session.ts";
import { TopicBridge } from "./topic_bridge.ts";

const LEASE_KEY: Deno.KvKey = ["mqtt", "external_subscriber"];
const CLIENT_ID_KEY: Deno.KvKey = ["mqtt", "external_client_id"];
const LEASE_TTL_MS = 10_000;
const RENEW_MS = 3_000;
const MAX_BACKOFF_MS = 10_000;
const CLOSE_WAIT_MS = 3_000;
/** Sluice cannot see who connected to an external broker: the topic's token says who sends. */
const EXTERNAL: Session = { principal: null, external: true, revoked: false };
/** Only `<token>/<channel>/…` routes: two-level topics (Sluice's own re-publishes) are never read back. */
const FILTERS = { "+/+/invoke": { qos: 1 as const }, "+/+/messages": { qos: 1 as const } };

/**
 * External-broker mode (`MQTT_URL`): one Sluice instance at a time (a KV lease) subscribes to
 * `+/+/invoke` and `+/+/messages` with a persistent session (clean = false, a client id kept in
 * KV), handles one message at a time and sends its PUBACK only after the commit (mqtt.js'
 * `handleMessage` holds it back), reconnecting with backoff. Topic messages are re-published on
 * `<channel>/messages`.
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
    close: () => subscriber.close(),
  };
}

class ExternalSubscriber {
  readonly #lease: KvLease;
  readonly #bridge: TopicBridge;
  readonly #inflight = new Set<Promise<void>>();
  readonly #stop = new AbortController();
  #client: MqttClient | null = null;
  #loop: Promise<void> = Promise.resolve();
  #reconnect: ReturnType<typeof setTimeout> | undefined;
  #attempt = 0;
  /** Set after a message could not be committed: the rest of the connection's messages are not acked. */
  #broken = false;
  #wasConnected = false;
  subscribed = false;

  constructor(
    private readonly sluice: Sluice,
    private readonly handler: PublishHandler,
    private readonly url: string,
    private readonly clientId: string,
  ) {
    this.#lease = new KvLease(sluice.kv, LEASE_KEY, crypto.randomUUID(), LEASE_TTL_MS, sluice.clock);
    this.#bridge = new TopicBridge(sluice.topics, (m) => {
      this.#client?.publish(messagesTopic(m.channel), Buffer.from(encodeMessage(m.message)), { qos: 1 }, (err) => {
        if (err) sluice.log.warn(`MQTT re-publish on ${m.channel} failed: ${describeError(err)}`);
      });
    }, sluice.log);
  }

  start(): void {
    this.#loop = this.#run();
  }

  health(): "ok" | "degraded" {
    return this.#client && !this.subscribed ? "degraded" : "ok";
  }

  async close(): Promise<void> {
    this.#stop.abort();
    clearTimeout(this.#reconnect);
    await this.#loop;
    await this.#disconnect();
    await this.#lease.release().catch(() => {});
  }

  /** Holds (or waits for) the lease; the holder keeps one connection and follows the channels. */
  async #run(): Promise<void> {
    const signal = this.#stop.signal;
    while (!signal.aborted) {
      let holding = false;
      try {
        holding = await this.#lease.claim();
      } catch (err) {
        this.sluice.log.warn(`MQTT subscriber lease cannot be renewed: ${describeError(err)}`);
      }
      if (signal.aborted) break;
      if (holding && !this.#client) this.#connect();
      else if (!holding && this.#client) await this.#disconnect();
      if (holding && this.subscribed) await this.#followChannels();
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, RENEW_MS);
        signal.addEventListener("abort", () => (clearTimeout(timer), resolve()), { once: true });
      });
    }
  }

  #connect(): void {
    this.#broken = false;
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
      if (!this.#wasConnected) this.sluice.log.info(`MQTT: subscribed on ${redacted(this.url)}`);
      this.#wasConnected = true;
      client.subscribe(FILTERS, (err) => {
        if (err) this.sluice.log.warn(`MQTT subscribe on the external broker failed: ${describeError(err)}`);
        this.subscribed = !err && client.connected;
      });
    });
    client.on("close", () => {
      this.subscribed = false;
      if (this.#client !== client || this.#stop.signal.aborted) return;
      if (this.#wasConnected) {
        this.sluice.log.warn(`MQTT: lost the external broker ${redacted(this.url)}; reconnecting`);
      }
      this.#wasConnected = false;
      const delay = Math.min(MAX_BACKOFF_MS, 200 * 2 ** this.#attempt++);
      clearTimeout(this.#reconnect);
      this.#reconnect = setTimeout(() => {
        if (this.#client === client && !this.#stop.signal.aborted) client.reconnect();
      }, delay);
    });
    // Connection errors are followed by "close", which reconnects; without a listener they would throw.
    client.on("error", () => {});
    this.#client = client;
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

  /** Follows every channel (except Sluice's own) to re-publish its messages. */
  async #followChannels(): Promise<void> {
    try {
      for (const channel of await this.sluice.channels.list()) {
        if (!isSystemChannel(channel.name)) await this.#bridge.follow(channel.name);
      }
    } catch (err) {
      this.sluice.log.warn(`MQTT: listing channels failed: ${describeError(err)}`);
    }
  }

  /** Lets messages in flight commit and get their PUBACK, then ends the connection (the session stays). */
  async #disconnect(): Promise<void> {
    const client = this.#client;
    if (!client) return;
    this.#broken = true;
    await settleWithin(Promise.allSettled([...this.#inflight]), CLOSE_WAIT_MS);
    this.#client = null;
    this.subscribed = false;
    this.#bridge.close();
    clearTimeout(this.#reconnect);
    if (!await settleWithin(client.endAsync(false), CLOSE_WAIT_MS)) client.end(true);
  }
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
