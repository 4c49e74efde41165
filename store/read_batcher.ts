import { KV_LIMITS } from "./kv_limits.ts";

/**
 * `getMany` calls in flight at once; past them, single-key reads wait and go together, up to 10 a call. Measured with
 * 10,000 devices new to Sluice sending 5,000 readings a second over HTTP (two each): 4 answered them with p50 / p99 36 /
 * 148–162 ms, 8 with 61–68 / 141–210 ms; before, a call a read, 2.6 s / 3.7 s and a quarter refused (503).
 */
const IN_FLIGHT = 4;

/**
 * Keys of a call that urgent reads may take while other reads wait. In the burst of 10,000 new devices (each a lane
 * and a pump to load beside its token): 9 answered with ack p50 32–122 ms at 4,740–4,966 msgs/s; 7 slowed the tokens
 * enough to fall behind (579–625 ms, 3,423–3,498 msgs/s).
 */
const URGENT_SHARE = 9;

interface Waiting {
  readonly key: Deno.KvKey;
  readonly resolve: (entry: Deno.KvEntryMaybe<unknown>) => void;
  readonly reject: (err: unknown) => void;
}

/**
 * Single-key KV reads gathered into `getMany` calls. KV answers each read call on its one SQLite
 * thread, so a burst of cold reads (thousands of devices seen for the first time after a restart:
 * their tokens, lanes and pumps) queues call by call, ahead of the commits. Reads asked in one turn
 * go together; while `IN_FLIGHT` calls are out, the reads asked meanwhile wait and go ten a call.
 * Under light load a read goes at once, alone, as `kv.get` would.
 */
export class ReadBatcher {
  #waiting: Waiting[] = [];
  /** Reads someone waits on (a device's token): they go before the others. */
  #urgent: Waiting[] = [];
  #inFlight = 0;
  #scheduled = false;

  constructor(private readonly kv: Deno.Kv) {}

  /** A key's entry; an `urgent` read (someone waits for its answer) goes before the others waiting. */
  get<T>(key: Deno.KvKey, urgent = false): Promise<Deno.KvEntryMaybe<T>> {
    return new Promise((resolve, reject) => {
      (urgent ? this.#urgent : this.#waiting).push({ key, resolve: resolve as Waiting["resolve"], reject });
      if (this.#scheduled) return;
      this.#scheduled = true;
      queueMicrotask(() => {
        this.#scheduled = false;
        this.#send();
      });
    });
  }

  /** Several keys, each read as `get` reads it (not one snapshot of them all). */
  getMany<T extends readonly unknown[]>(
    keyList: readonly [...{ [K in keyof T]: Deno.KvKey }],
  ): Promise<{ [K in keyof T]: Deno.KvEntryMaybe<T[K]> }> {
    return Promise.all(keyList.map((k) => this.get(k))) as Promise<{ [K in keyof T]: Deno.KvEntryMaybe<T[K]> }>;
  }

  #send(): void {
    while (this.#urgent.length + this.#waiting.length > 0 && this.#inFlight < IN_FLIGHT) {
      // Urgent reads first, but never all of a call while others wait: a stream of them (unknown tokens, which are
      // never cached) must not hold back the lanes' and pumps' reads for as long as it lasts.
      const group = this.#urgent.splice(0, this.#waiting.length > 0 ? URGENT_SHARE : KV_LIMITS.getMany);
      group.push(...this.#waiting.splice(0, KV_LIMITS.getMany - group.length));
      this.#inFlight++;
      // Called in a promise, so that a KV that throws at once (closed) fails the reads, not this loop.
      Promise.resolve(group).then((g) => this.kv.getMany(g.map((w) => w.key))).then(
        (entries) => entries.forEach((e, i) => group[i]!.resolve(e)),
        // A key KV refuses fails its own read only: the others are read again one by one.
        (err) =>
          group.length === 1
            ? group[0]!.reject(err)
            : group.forEach((w) => Promise.resolve(w.key).then((k) => this.kv.get(k)).then(w.resolve, w.reject)),
      ).finally(() => {
        this.#inFlight--;
        this.#send();
      });
    }
  }
}
