import { Readable } from "node:stream";

/** One message queued in aedes's persistence for a session (away, or in flight until its PUBACK). */
interface Queued {
  readonly messageId?: number;
}

/**
 * What of aedes's in-memory persistence the cap wraps: its queue of messages for each session kept
 * (clean session off), filled while the client is away and for the QoS 1 messages in flight to it.
 */
export interface OutgoingQueues {
  outgoingEnqueue(sub: { clientId: string }, packet: unknown): Promise<unknown>;
  outgoingEnqueueCombi(subs: { clientId: string }[], packet: unknown): Promise<unknown>;
  outgoingClearMessageId(client: { id: string }, packet: Queued): Promise<Queued | undefined>;
  outgoingStream(client: { id: string }): AsyncIterable<Queued>;
  cleanSubscriptions(client: { id: string }): Promise<unknown>;
}

/**
 * Bounds the queue of each kept MQTT session away to `max` messages: once full, newer messages are
 * not queued for it (as Mosquitto's `max_queued_messages`) until the client takes some. Without it a
 * session away holds every message of its channels, with no bound on memory. A connected client's
 * messages are always queued (aedes ends a connection whose message it cannot find in the queue):
 * the QoS 1 messages in flight to it, which it acknowledges as it reads.
 */
export class SessionQueues {
  readonly #queues: OutgoingQueues;
  readonly #max: number;
  readonly #onDrop: (clientId: string, firstSinceFull: boolean) => void;
  readonly #connected: (clientId: string) => boolean;
  /** Messages in each session's queue, as counted here (aedes keeps no count). */
  readonly #counts = new Map<string, number>();
  /** Sessions that dropped a message since their queue was last below `max`. */
  readonly #full = new Set<string>();
  /** Sessions being ended (`forget`): a message a publish looked them up for before then is not queued. */
  readonly #ending = new Set<string>();

  constructor(
    queues: OutgoingQueues,
    max: number,
    connected: (clientId: string) => boolean,
    onDrop: (clientId: string, firstSinceFull: boolean) => void,
  ) {
    this.#queues = queues;
    this.#max = max;
    this.#connected = connected;
    this.#onDrop = onDrop;
    const enqueue = queues.outgoingEnqueueCombi.bind(queues);
    const clear = queues.outgoingClearMessageId.bind(queues);
    const stream = queues.outgoingStream.bind(queues);
    // A queued message with a packet id was sent before (aedes gives the id as it sends): sent again, on the session's
    // return, it is marked DUP [MQTT-3.3.1-1]; one queued while the client was away goes as new.
    queues.outgoingStream = (client) =>
      Readable.from(
        (async function* () {
          for await (const packet of stream(client)) {
            yield packet.messageId === undefined ? packet : { ...packet, dup: true };
          }
        })(),
      );
    queues.outgoingEnqueue = (sub, packet) => enqueue(this.#room([sub]), packet);
    queues.outgoingEnqueueCombi = (subs, packet) => enqueue(this.#room(subs), packet);
    queues.outgoingClearMessageId = async (client, packet) => {
      const removed = await clear(client, packet);
      if (removed !== undefined) this.#taken(client.id);
      return removed;
    };
  }

  /** Messages queued for a session. */
  size(clientId: string): number {
    return this.#counts.get(clientId) ?? 0;
  }

  /** Ends a kept session: its subscriptions and every message queued for it (also one that comes meanwhile). */
  async forget(clientId: string): Promise<void> {
    this.#ending.add(clientId);
    const client = { id: clientId };
    try {
      await this.#queues.cleanSubscriptions(client);
      const queued: Queued[] = [];
      for await (const packet of this.#queues.outgoingStream(client)) queued.push(packet);
      for (const packet of queued) await this.#queues.outgoingClearMessageId(client, { messageId: packet.messageId });
    } finally {
      this.#ending.delete(clientId);
      this.#counts.delete(clientId);
      this.#full.delete(clientId);
    }
  }

  /** The sessions among `subs` with room in their queue (or connected), each counted one more. */
  #room(subs: { clientId: string }[]): { clientId: string }[] {
    const kept = [];
    for (const sub of subs) {
      if (this.#ending.has(sub.clientId)) continue;
      const n = this.size(sub.clientId);
      if (n < this.#max || this.#connected(sub.clientId)) {
        this.#counts.set(sub.clientId, n + 1);
        kept.push(sub);
      } else {
        this.#onDrop(sub.clientId, !this.#full.has(sub.clientId));
        this.#full.add(sub.clientId);
      }
    }
    return kept;
  }

  #taken(clientId: string): void {
    const n = this.size(clientId) - 1;
    if (n > 0) this.#counts.set(clientId, n);
    else this.#counts.delete(clientId);
    if (n < this.#max) this.#full.delete(clientId);
  }
}
