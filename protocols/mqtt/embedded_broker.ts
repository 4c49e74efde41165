import { Buffer } from "node:buffer";
import type { EventEmitter } from "node:events";
import { Aedes, type AedesPublishPacket, type Client, type PublishPacket, type Subscription } from "aedes";
import { describeError } from "../../core/errors.ts";
import type { Logger } from "../../core/log.ts";
import type { TopicHub } from "../../engine/topic_hub.ts";
import type { ChannelRegistry } from "../../store/channel_registry.ts";
import type { DeviceDirectory } from "../../store/device_directory.ts";
import type { RefusedLog } from "../../store/refused_log.ts";
import { settleWithin } from "../settle.ts";
import type { DeviceStreams } from "../../core/device_streams.ts";
import type { ByteDuplex } from "./byte_duplex.ts";
import { encodeMessage } from "./payload.ts";
import type { PublishHandler } from "./publish_handler.ts";
import { messagesTopic, parseSubscribeTopic } from "./routes.ts";
import {
  authenticateConnect,
  clientIdProblem,
  type ConnectAuthOptions,
  deviceSessions,
  type Session,
  sessionClientId,
  sessionPrincipal,
  stringProblem,
} from "./session.ts";
import { type OutgoingQueues, SessionQueues } from "./session_queues.ts";
import { subscribeRefusal } from "./subscribe_acl.ts";
import { TopicBridge } from "./topic_bridge.ts";

export interface EmbeddedBrokerOptions {
  readonly handler: PublishHandler;
  readonly auth: ConnectAuthOptions;
  readonly devices: DeviceDirectory;
  readonly channels: ChannelRegistry;
  readonly topics: TopicHub;
  /** Refused subscriptions are recorded there with their reason (SUBACK can only say "failure"). */
  readonly refused: RefusedLog;
  readonly log: Logger;
  /** Most open connections (TCP, TLS and WebSocket together, CONNECTed or not); more are closed at once. */
  readonly maxConnections?: number;
  /** The connections each device holds, with its WebSocket sessions and SSE streams. */
  readonly deviceStreams?: DeviceStreams;
  /** Most messages queued for one kept session (clean session off); newer ones are dropped for it. */
  readonly maxQueued?: number;
  /** A message not queued for a kept session whose queue is full. */
  readonly onQueueDrop?: () => void;
}

/** Default cap on open MQTT connections, as for WebSocket. */
export const MAX_MQTT_CONNECTIONS = 10_000;
/** Default cap on the messages queued for one kept session, as Mosquitto's `max_queued_messages`. */
export const MAX_QUEUED_MESSAGES = 1000;
/** How long a new connection may take to send its CONNECT (slow-loris). */
export const CONNECT_TIMEOUT_MS = 10_000;

/**
 * Where an accepted (or refused) publish goes once handled, so aedes never forwards it: nobody
 * may subscribe to `$SYS`, and its payload is emptied anyway. Subscribers get what Sluice
 * re-publishes from the topic log, without the token the device may have put in its topic.
 */
const SINK_TOPIC = "$SYS/sluice/handled";
const EMPTY = Buffer.alloc(0);
const SWEEP_MS = 5_000;
const CLOSE_WAIT_MS = 3_000;

/** What Sluice asks of aedes's persistence: the QoS 2 packets received and not yet released. */
interface IncomingPackets {
  incomingGetPacket(client: Client, packet: PublishPacket): Promise<unknown>;
}

/** ... and the subscriptions it keeps for a session. */
interface SubscriptionStore {
  removeSubscriptions(client: Client, topics: string[]): Promise<unknown>;
}

/** Sends a handled publish where nobody gets it. */
function sink(packet: PublishPacket): void {
  packet.topic = SINK_TOPIC;
  packet.payload = EMPTY;
  packet.retain = false;
}

/**
 * The embedded MQTT broker: aedes with Sluice's hooks. A publish is committed inside
 * `authorizePublish`, whose callback holds back the PUBACK (QoS 1) or PUBREC (QoS 2), so the
 * acknowledgement goes out only after the commit.
 */
/** The "granted QoS" of a refused subscription in a SUBACK (MQTT 3.1.1, 3.9.3). */
const REFUSED_QOS = 128;

export class EmbeddedBroker {
  readonly #aedes: Aedes;
  readonly #options: EmbeddedBrokerOptions;
  readonly #sessions = new WeakMap<Client, Session>();
  /**
   * Connections that sent an empty client id with clean session off: aedes would invent an id for them, and keep a
   * session nobody can resume. They get CONNACK "identifier rejected" (2) [MQTT-3.1.3-8].
   */
  readonly #unnamed = new WeakSet<Client>();
  readonly #inflight = new Set<Promise<unknown>>();
  /** QoS 2 publishes being committed, by client id and packet id, and whether each was. */
  readonly #qos2Commits = new Map<string, Promise<boolean>>();
  /** A number for each clean-session connection: its packet ids are its own. */
  readonly #connectionIds = new WeakMap<Client, number>();
  #nextConnection = 0;
  /** Open connections, each with what gives its device's slot back once it CONNECTed as one. */
  readonly #connections = new Map<ByteDuplex, () => void>();
  readonly #bridge: TopicBridge;
  readonly #stopRevocations: () => void;
  readonly #stopChanges: () => void;
  readonly #sweeper: ReturnType<typeof setInterval>;
  /**
   * Persistent sessions (clean: false), by client id: the channels they subscribe to, followed while they are away
   * (messages are queued for them), and those refused to them, never forwarded (aedes stores a SUBSCRIBE's refused
   * filters with its granted ones, and delivers its offline queue before a reconnect's subscriptions are checked).
   */
  readonly #persistent = new Map<string, { subscribed: Set<string>; refused: Set<string> }>();
  readonly #queues: SessionQueues;
  /**
   * Connections open under each session's client id once authenticated: aedes makes a reconnecting client's kept
   * subscriptions live before it lists the client, and every message then delivered must be in its queue.
   */
  readonly #live = new Map<string, number>();
  /** Messages held for a kept session coming back until its queue is sent (`holdUntilReady`). */
  readonly #held = new WeakMap<Client, (() => void)[]>();
  #closing = false;
  #atCap = false;

  private constructor(aedes: Aedes, options: EmbeddedBrokerOptions) {
    this.#aedes = aedes;
    this.#options = options;
    this.#bridge = new TopicBridge(options.topics, (m) => {
      const packet = {
        cmd: "publish",
        topic: messagesTopic(m.channel),
        payload: Buffer.from(encodeMessage(m.message)),
        qos: 1,
        retain: false,
        dup: false,
      } as PublishPacket;
      aedes.publish(packet, (err) => {
        if (err) options.log.warn(`MQTT re-publish on ${m.channel} failed: ${describeError(err)}`);
      });
    }, options.log);
    const max = options.maxQueued ?? MAX_QUEUED_MESSAGES;
    const connected = (clientId: string) => this.#live.has(clientId);
    this.#queues = new SessionQueues(this.#persistence<OutgoingQueues>(), max, connected, (clientId, first) => {
      options.onQueueDrop?.();
      if (first) {
        options.log.warn(
          `MQTT: ${max} messages are queued for the kept session of ${sessionName(clientId)}, away ` +
            `(MQTT_MAX_QUEUED): newer ones are dropped for it until it comes back`,
        );
      }
    });
    this.#stopRevocations = options.devices.onRevoke((id) => this.#disconnectDevice(id));
    this.#stopChanges = options.channels.onChange((channel) => this.#recheckSubscriptions(channel));
    this.#sweeper = setInterval(() => this.#sweep(), SWEEP_MS);
    const events = aedes as unknown as EventEmitter;
    events.on("subscribe", (subs: Subscription[], client: Client) => this.#subscribed(client, subs));
    events.on("unsubscribe", (topics: string[], client: Client) => this.#unsubscribed(client, topics));
    events.on("clientReady", (client: Client) => {
      const held = this.#held.get(client);
      this.#held.delete(client);
      for (const send of held ?? []) send();
    });
    // A clean session replaces a persistent one of the same client id (aedes drops what it stored).
    events.on("client", (client: Client) => client.clean !== false && this.#persistent.delete(client.id));
    // Persistence failures are emitted as "error"; without a listener they would end the process.
    (aedes as unknown as EventEmitter).on("error", (err) => options.log.warn(`MQTT broker: ${describeError(err)}`));
  }

  /** Starts aedes with Sluice's authentication, ACL and ack-after-commit hooks. */
  static async start(options: EmbeddedBrokerOptions): Promise<EmbeddedBroker> {
    let self: EmbeddedBroker | null = null;
    const aedes = await Aedes.createBroker({
      // One stalled subscriber must not hold up delivery to the others.
      drainTimeout: 10_000,
      connectTimeout: CONNECT_TIMEOUT_MS,
      preConnect: (client, packet, done) => {
        // An error (not just `false`) makes aedes close the connection; `false` alone would leave it open.
        const problem = clientIdProblem(packet.clientId ?? "");
        if (problem === null && !packet.clientId && packet.clean === false) self!.#unnamed.add(client);
        done(problem === null ? null : new Error(problem), problem === null);
      },
      authenticate: (client, username, password, done) => self!.#authenticate(client, username, password, done),
      authorizePublish: (client, packet, done) => self!.#authorizePublish(client, packet, done),
      authorizeSubscribe: (client, sub, done) => self!.#authorizeSubscribe(client, sub, done),
      authorizeForward: (client, packet) => self!.#mayForward(client, packet) ? forwardable(packet) : null,
    });
    self = new EmbeddedBroker(aedes, options);
    return self;
  }

  /** Serves one connection (TCP, TLS or WebSocket). */
  handle(conn: ByteDuplex): void {
    if (this.#closing) {
      conn.destroy();
      return;
    }
    const max = this.#options.maxConnections ?? MAX_MQTT_CONNECTIONS;
    if (this.#connections.size >= max) {
      if (!this.#atCap) this.#options.log.warn(`MQTT: ${max} connections open, closing new ones until some end`);
      this.#atCap = true;
      conn.destroy();
      return;
    }
    this.#atCap = false;
    this.#connections.set(conn, () => {});
    conn.once("close", () => {
      this.#connections.get(conn)?.(); // the device's slot: it may connect again at once
      this.#connections.set(conn, () => {});
    });
    // Counted until its socket is released: a WebSocket client that never answers the close frame keeps its
    // socket, and the cap must go on bounding those.
    conn.gone.then(() => this.#connections.delete(conn));
    this.#aedes.handle(conn);
  }

  /** Open connections: TCP, TLS and WebSocket together, CONNECTed or not. */
  get connections(): number {
    return this.#connections.size;
  }

  /** Stops taking publishes, lets those in flight commit and get their PUBACK, then closes. */
  async close(): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    clearInterval(this.#sweeper);
    this.#stopRevocations();
    this.#stopChanges();
    await settleWithin(Promise.allSettled([...this.#inflight]), CLOSE_WAIT_MS);
    await new Promise<void>((resolve) => this.#aedes.close(() => resolve()));
    for (const conn of this.#connections.keys()) conn.destroy();
    this.#bridge.close();
  }

  /** A throw from inside aedes' callbacks: logged, never an unhandled rejection that ends the process. */
  readonly #bug = (err: unknown): void => this.#options.log.error(`MQTT broker hook failed: ${describeError(err)}`);

  #authenticate(
    client: Client,
    username: string | undefined,
    password: Uint8Array | undefined,
    done: (err: (Error & { returnCode: number }) | null, ok: boolean | null) => void,
  ): void {
    if (this.#unnamed.has(client)) {
      return done(Object.assign(new Error("Empty client id without clean session"), { returnCode: 2 }), false);
    }
    const address = (client.conn as unknown as { remoteAddress?: string }).remoteAddress;
    authenticateConnect(this.#options.auth, username, password, address).then((answer) => {
      if (!answer.ok) {
        return done(Object.assign(new Error("Connection refused"), { returnCode: answer.returnCode }), false);
      }
      const conn = client.conn as unknown as ByteDuplex;
      if (!this.#connections.has(conn) || conn.destroyed) {
        return done(Object.assign(new Error("Closed"), { returnCode: 3 }), false);
      }
      try {
        const { principal } = answer.session;
        if (principal && this.#options.deviceStreams) {
          this.#connections.set(conn, this.#options.deviceStreams.take(principal));
        }
      } catch (err) {
        // The device holds its limit of connections: "server unavailable" (MQTT 3.1.1 has no quota code).
        return done(Object.assign(err as Error, { returnCode: 3 }), false);
      }
      this.#sessions.set(client, answer.session);
      const id = sessionClientId(answer.session, client.id);
      (client as { id: string }).id = id;
      this.#live.set(id, (this.#live.get(id) ?? 0) + 1);
      if (client.clean === false) holdUntilReady(client, this.#held);
      conn.once("close", () => {
        const left = this.#live.get(id)! - 1;
        if (left > 0) this.#live.set(id, left);
        else this.#live.delete(id);
      });
      done(null, true);
    }, (err) => {
      this.#options.log.warn(`MQTT authentication failed: ${describeError(err)}`);
      done(Object.assign(new Error("Server unavailable"), { returnCode: 3 }), false);
    }).catch(this.#bug);
  }

  #authorizePublish(client: Client | null, packet: PublishPacket, done: (err?: Error | null) => void): void {
    const session = client ? this.#sessions.get(client) : undefined;
    if (!client || !session || this.#closing) return done(new Error("Not taking publishes"));
    const work =
      (packet.qos === 2 ? this.#handleQos2(client, session, packet, done) : this.#handle(session, packet).then(done))
        .catch(this.#bug);
    this.#inflight.add(work);
    work.finally(() => this.#inflight.delete(work));
  }

  /** Commits a publish; null when it may be acknowledged, else why the client is disconnected without one. */
  async #handle(session: Session, packet: PublishPacket): Promise<Error | null> {
    const payload = typeof packet.payload === "string" ? Buffer.from(packet.payload) : packet.payload;
    const outcome = await this.#options.handler.handle(session, packet.topic, payload);
    switch (outcome.kind) {
      case "accepted":
      case "refused":
      case "quota":
        sink(packet);
        return null;
      case "forbidden":
      case "retry":
        return new Error(outcome.reason);
    }
  }

  /**
   * A QoS 2 PUBLISH whose packet id awaits its PUBREL is the same message sent again (MQTT-4.3.3-2), whatever its DUP
   * flag: it is acknowledged without a second commit. aedes keeps such a packet from its PUBREC to its PUBREL (under
   * the client id, which a reconnect keeps without clean session; a clean one wipes it); before that, the commit in
   * flight stands for it. Its entry goes in at once: aedes hands every packet of one socket read over together.
   */
  async #handleQos2(
    client: Client,
    session: Session,
    packet: PublishPacket,
    done: (err: Error | null) => void,
  ): Promise<void> {
    const key = `${this.#qos2Owner(client)}\u0000${packet.messageId}`;
    const earlier = this.#qos2Commits.get(key);
    const acked = Promise.withResolvers<boolean>();
    this.#qos2Commits.set(key, acked.promise);
    try {
      if (earlier ? await earlier : await this.#awaitsPubrel(client, packet)) {
        sink(packet);
        acked.resolve(true);
        return done(null);
      }
      const err = await this.#handle(session, packet);
      acked.resolve(err === null);
      done(err);
    } finally {
      acked.resolve(false); // a throw: no acknowledgement
      // aedes stores the packet right after the callback, within this turn (its store is in memory): a packet read
      // from then on finds it there. Kept longer, the entry would take a new message reusing the id after the
      // PUBCOMP for this one.
      if (this.#qos2Commits.get(key) === acked.promise) this.#qos2Commits.delete(key);
    }
  }

  /** Whose QoS 2 packet ids these are: the client id across reconnects without clean session, else one connection. */
  #qos2Owner(client: Client): string {
    if (client.clean === false) return `s:${client.id}`;
    let n = this.#connectionIds.get(client);
    if (n === undefined) this.#connectionIds.set(client, n = this.#nextConnection++);
    return `c:${n}`;
  }

  async #awaitsPubrel(client: Client, packet: PublishPacket): Promise<boolean> {
    return await this.#persistence<IncomingPackets>().incomingGetPacket(client, packet).then(() => true, () => false);
  }

  #authorizeSubscribe(
    client: Client,
    sub: Subscription,
    done: (err: Error | null, sub?: Subscription | null) => void,
  ): void {
    const session = this.#sessions.get(client);
    const problem = stringProblem("Subscription filter", sub.topic);
    if (problem) {
      // Not a refusal (SUBACK 128) but a protocol error: the connection is closed [MQTT-1.5.3-1], [MQTT-1.5.3-2].
      const principal = session?.principal;
      this.#options.refused.record({
        protocol: "mqtt",
        device: principal?.kind === "device" ? principal.id : null,
        code: "forbidden",
        reason: `Subscription refused, connection closed: ${problem}`,
      });
      return done(new Error(problem));
    }
    const channel = parseSubscribeTopic(sub.topic);
    if (!session || this.#closing) return done(null, null);
    const principal = session.principal;
    if (!principal || session.revoked) return done(null, null);
    subscribeRefusal(principal, channel, this.#options.channels)
      .then(async (refusal) => {
        if (refusal) {
          // A persistent session brings its stored subscriptions back on reconnecting: drop a refused one.
          if (channel !== null) this.#persistentOf(client)?.refused.add(channel);
          await this.#forgetSubscriptions(client, [sub.topic]);
          this.#options.refused.record({
            protocol: "mqtt",
            device: principal.kind === "device" ? principal.id : null,
            ...(channel === null ? {} : { channel }),
            code: refusal.code,
            reason: `Subscription refused: ${refusal.message}`,
          });
          return false;
        }
        this.#persistentOf(client)?.refused.delete(channel!);
        await this.#bridge.follow(channel!);
        return true;
      })
      .catch((err) => {
        this.#options.log.warn(`MQTT subscribe failed: ${describeError(err)}`);
        return false;
      })
      // QoS 2 is granted as asked: Sluice sends every message at QoS 1, which is what reaches the client either way
      // (aedes answers the SUBACK with the QoS asked, whatever is given back here).
      .then((ok) => done(null, ok ? sub : null))
      .catch(this.#bug);
  }

  /** A revoked (or deleted) device: its connections are closed and its kept sessions ended with what they queued. */
  #disconnectDevice(id: string): void {
    for (const client of Object.values(this.#clients())) {
      const session = this.#sessions.get(client);
      if (session?.principal?.kind === "device" && session.principal.id === id) {
        session.revoked = true;
        client.close();
      }
    }
    const prefix = deviceSessions(id);
    for (const clientId of [...this.#persistent.keys()].filter((c) => c.startsWith(prefix))) {
      this.#persistent.delete(clientId);
      this.#queues.forget(clientId).catch(this.#bug);
    }
  }

  /**
   * Disconnects the sessions subscribed to `changed` (null: any channel) that its settings no longer
   * allow (a deleted channel, anonymous subscribers refused): subscribing again is then refused.
   */
  #recheckSubscriptions(changed: string | null): void {
    for (const client of Object.values(this.#clients())) {
      const principal = this.#sessions.get(client)?.principal;
      if (!principal) continue;
      const channels = subscribedChannels(client).filter((c) => changed === null || c === changed);
      Promise.all(channels.map((c) => subscribeRefusal(principal, c, this.#options.channels)))
        .then(async (refusals) => {
          const refused = channels.filter((_, i) => refusals[i] !== null);
          if (refused.length === 0) return;
          for (const c of refused) this.#persistentOf(client)?.refused.add(c);
          // A persistent session (clean: false) keeps its subscriptions while away, and messages are
          // queued for them: drop them before closing it.
          await this.#forgetSubscriptions(client, refused.map(messagesTopic));
          client.close();
        })
        .catch((err) => this.#options.log.warn(`MQTT subscriptions not rechecked: ${describeError(err)}`));
    }
    this.#recheckAway(changed);
  }

  /**
   * The same for kept sessions whose client is away: the subscriptions no longer allowed end (and what was queued for
   * them is not sent), so that a channel deleted and created again is not followed by sessions that subscribed to the
   * old one.
   */
  #recheckAway(changed: string | null): void {
    const online = this.#clients();
    for (const [clientId, kept] of this.#persistent) {
      const principal = sessionPrincipal(clientId);
      // (Also one coming back whose subscriptions are being restored: those checked already are live.)
      if (online[clientId] || !principal) continue;
      const channels = [...kept.subscribed].filter((c) => changed === null || c === changed);
      Promise.all(channels.map((c) => subscribeRefusal(principal, c, this.#options.channels)))
        .then(async (refusals) => {
          const refused = channels.filter((_, i) => refusals[i] !== null);
          if (refused.length === 0) return;
          for (const c of refused) kept.refused.add(c), kept.subscribed.delete(c);
          const away = { id: clientId } as Client;
          await this.#persistence<SubscriptionStore>().removeSubscriptions(away, refused.map(messagesTopic));
        })
        .catch((err) => this.#options.log.warn(`MQTT subscriptions not rechecked: ${describeError(err)}`));
    }
  }

  /** What Sluice keeps of a persistent session (undefined for a clean one, whose subscriptions end with it). */
  #persistentOf(client: Client): { subscribed: Set<string>; refused: Set<string> } | undefined {
    if (client.clean !== false) {
      this.#persistent.delete(client.id); // a clean session replaces a persistent one of the same id
      return undefined;
    }
    let kept = this.#persistent.get(client.id);
    if (!kept) this.#persistent.set(client.id, kept = { subscribed: new Set(), refused: new Set() });
    return kept;
  }

  /** After a SUBSCRIBE's stores: its refused filters, stored with its granted ones by aedes, are removed again. */
  #subscribed(client: Client, subs: Subscription[]): void {
    const kept = this.#persistentOf(client);
    if (!kept) return;
    // aedes sets each one's qos to what was granted: 128 for a refusal.
    const granted = (s: Subscription) => (s.qos as number) !== REFUSED_QOS;
    const refused = subs.filter((s) => !granted(s)).map((s) => s.topic);
    for (const s of subs) {
      const channel = parseSubscribeTopic(s.topic);
      if (channel !== null && granted(s)) kept.subscribed.add(channel);
    }
    if (refused.length > 0) this.#forgetSubscriptions(client, refused).catch(this.#bug);
  }

  /** A persistent session's subscriptions ended (UNSUBSCRIBE, or refused): their channels are no longer kept for it. */
  #unsubscribed(client: Client, topics: readonly string[]): void {
    const kept = this.#persistent.get(client.id);
    for (const t of topics) {
      const channel = parseSubscribeTopic(t);
      if (channel !== null) kept?.subscribed.delete(channel);
    }
  }

  /** Whether `client` may be sent a message of the channel `packet` is on (one refused to its session may not). */
  #mayForward(client: Client | null, packet: AedesPublishPacket): boolean {
    if (!client || client.clean !== false) return true;
    const channel = parseSubscribeTopic(packet.topic);
    return channel === null || !this.#persistent.get(client.id)?.refused.has(channel);
  }

  /** Removes subscriptions from the client's stored session (kept for a `clean: false` session). */
  async #forgetSubscriptions(client: Client, topics: string[]): Promise<void> {
    this.#unsubscribed(client, topics);
    await this.#persistence<SubscriptionStore>().removeSubscriptions(client, topics);
  }

  /** aedes's persistence (in memory), as far as Sluice uses it. */
  #persistence<T>(): T {
    return (this.#aedes as unknown as { persistence: T }).persistence;
  }

  /** Stops following channels nobody subscribes to any more (a persistent session away still does). */
  #sweep(): void {
    const live = new Set<string>();
    for (const client of Object.values(this.#clients())) {
      for (const channel of subscribedChannels(client)) live.add(channel);
    }
    for (const kept of this.#persistent.values()) for (const channel of kept.subscribed) live.add(channel);
    this.#bridge.keepOnly(live);
  }

  #clients(): Record<string, Client> {
    return (this.#aedes as unknown as { clients: Record<string, Client> }).clients;
  }
}

/** How aedes hands a client one message of its subscriptions. */
type Deliver = (packet: unknown, done: () => void) => void;

/**
 * aedes makes a kept session's subscriptions live as it restores them, before its CONNACK, and sends the session's
 * queue after the CONNACK, from a copy taken then. A message delivered live meanwhile was written first (before the
 * CONNACK: against MQTT [MQTT-3.2.0-1], and mqtt.js, which holds its PUBACK until connected and reads one packet at a
 * time, then never read the CONNACK) or in the middle of the queue (out of order). Held instead: one at QoS 1 that came
 * before the CONNACK is in that copy (aedes queues each message for a kept session's QoS 1 subscriptions first); the
 * others are sent once the queue has been (`clientReady`), in the order they came.
 */
function holdUntilReady(client: Client, held: WeakMap<Client, (() => void)[]>): void {
  const c = client as unknown as { deliverQoS: Deliver; deliver0: Deliver; connackSent?: boolean; connected: boolean };
  const hold = (deliver: Deliver, queued: boolean): Deliver => (packet, done) => {
    if (c.connected) return deliver(packet, done);
    // Queued for the session before the CONNACK: in the copy aedes sends (Sluice re-publishes at QoS 1).
    const inCopy = queued && !c.connackSent && (packet as { qos?: number }).qos !== 0;
    if (!inCopy) {
      let later = held.get(client);
      if (!later) held.set(client, later = []);
      later.push(() => deliver(packet, () => {}));
    }
    queueMicrotask(done);
  };
  c.deliverQoS = hold(c.deliverQoS, true);
  c.deliver0 = hold(c.deliver0, false);
}

/** Who holds a session, for the log: its device (or the admin, or anyone) and its client id. */
function sessionName(clientId: string): string {
  const p = sessionPrincipal(clientId);
  if (p?.kind === "device") return `device ${p.id} (client id "${clientId.slice(deviceSessions(p.id).length)}")`;
  return `${p?.kind === "admin" ? "the admin" : "an anonymous client"} (client id "${clientId.slice(2)}")`;
}

/** The channels whose messages a client subscribed to. */
function subscribedChannels(client: Client): string[] {
  const subs = (client as unknown as { subscriptions: Record<string, unknown> }).subscriptions;
  return Object.keys(subs).map(parseSubscribeTopic).filter((c): c is string => c !== null);
}

/** Only what Sluice re-publishes reaches subscribers: never a device's own publish. */
function forwardable(packet: AedesPublishPacket): AedesPublishPacket | null {
  if ((packet as { clientId?: string }).clientId !== undefined) return null;
  return parseSubscribeTopic(packet.topic) === null ? null : packet;
}
