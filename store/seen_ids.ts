import type { Clock } from "../core/clock.ts";
import { keys } from "./keys.ts";

/** Bits of one generation's filter (4 MiB). */
const BITS = 1 << 25;
/** Bits set per id. */
const HASHES = 5;
/** Ids a generation takes before it stops answering "surely not": about 1% false "maybe" up to here. */
const CAPACITY_SHARE = 0.1;
/** A generation covers the dedup window and this much more: a key is written a little after its id is added. */
const MARGIN_MS = 60_000;

interface Generation {
  bits: Uint8Array;
  count: number;
  startedAt: number;
}

/**
 * The message ids whose dedup keys one writer may have stored, as Bloom filters: a `false` from
 * `mayHave` means the id's key is surely not in KV, so ingest accepts the message without reading
 * it (a read on KV's one thread costs about as much as two writes). A `true` (the id was added, or
 * 1 time in 100 by chance) means read KV as before.
 *
 * Only a single writer can use it: every key it has not added itself was there when `load` ran.
 * Ids live in two generations that each cover one dedup window, so an id is known for at least a
 * window after it was added. Until `load` has read the keys earlier processes left, and in a
 * generation that holds more ids than it has room for, every answer is `true`.
 */
export class SeenIds {
  #current: Generation | null = null;
  #previous: Generation | null = null;
  #loaded = false;
  readonly #capacity: number;

  constructor(private readonly windowMs: number, private readonly clock: Clock, private readonly bits = BITS) {
    if (bits & (bits - 1)) throw new Error("SeenIds: bits must be a power of two");
    this.#capacity = Math.floor(bits * CAPACITY_SHARE);
  }

  /** Whether every dedup key of earlier processes has been read in. */
  get loaded(): boolean {
    return this.#loaded;
  }

  /** Notes an id whose key is about to be written. */
  add(id: string): void {
    const gen = this.#generation();
    const [h1, h2] = hashes(id);
    for (let i = 0; i < HASHES; i++) {
      const bit = (h1 + Math.imul(i, h2)) & (this.bits - 1);
      gen.bits[bit >>> 3]! |= 1 << (bit & 7);
    }
    gen.count++;
  }

  /** False when the id's key is surely not in KV; true when it may be (read KV to know). */
  mayHave(id: string): boolean {
    if (!this.#loaded) return true;
    const current = this.#generation();
    const [h1, h2] = hashes(id);
    return this.#holds(current, h1, h2) || (this.#previous !== null && this.#holds(this.#previous, h1, h2));
  }

  /**
   * Reads in the dedup keys already in KV (left by earlier processes); returns how many, or null
   * when `signal` stopped it first (every answer stays `true` then).
   */
  async load(kv: Deno.Kv, signal?: AbortSignal): Promise<number | null> {
    let n = 0;
    for await (const e of kv.list({ prefix: keys.dedups() }, { batchSize: 1000 })) {
      if (signal?.aborted) return null;
      this.add(idOf(String(e.key[1]), String(e.key[2])));
      n++;
    }
    this.#loaded = true;
    return n;
  }

  #holds(gen: Generation, h1: number, h2: number): boolean {
    if (gen.count > this.#capacity) return true;
    for (let i = 0; i < HASHES; i++) {
      const bit = (h1 + Math.imul(i, h2)) & (this.bits - 1);
      if ((gen.bits[bit >>> 3]! & (1 << (bit & 7))) === 0) return false;
    }
    return true;
  }

  /** The generation ids go to now: a new one once the current one is a window old. */
  #generation(): Generation {
    const now = this.clock.now();
    if (this.#current && now - this.#current.startedAt < this.windowMs + MARGIN_MS) return this.#current;
    // Ids of the generation before the previous one are all over a window old: their keys expired.
    const reuse = this.#previous?.bits.fill(0);
    this.#previous = this.#current;
    this.#current = { bits: reuse ?? new Uint8Array(this.bits >>> 3), count: 0, startedAt: now };
    return this.#current;
  }
}

/** The string a sender's message id is known by. */
export function idOf(sender: string, id: string): string {
  return `${sender}\u0000${id}`;
}

/** Two 32-bit hashes of a string (FNV-1a, and a variant of it); the second is odd, for double hashing. */
function hashes(s: string): [number, number] {
  let a = 0x811c9dc5, b = 0x01000193 ^ 0x5bd1e995;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x5bd1e995);
    b ^= b >>> 15;
  }
  return [a >>> 0, (b | 1) >>> 0];
}
