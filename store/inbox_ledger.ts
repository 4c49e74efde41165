import type { AppendedEvent } from "./committer.ts";
import { type DeferredSet, type InboxEntry, PACK_BYTES } from "./inbox.ts";
import { keyId, keySize } from "../core/kv_size.ts";
import { keys } from "./keys.ts";
import { KV_LIMITS } from "./kv_limits.ts";

/** An event acked from the inbox and not yet moved to its stream. */
export interface Unmoved extends InboxEntry {
  readonly sets: DeferredSet[];
  readonly bytes: number;
  queuedAt: number;
  /** The inbox pack it is stored in. */
  pack?: Pack;
  moved?: boolean;
}

/** One inbox pack: its number (the key) and how many of its events have not moved yet. */
interface Pack {
  readonly p: number;
  left: number;
}

/** The next commit of a move: its events, and what it writes to KV. */
export interface MoveShare {
  readonly move: Unmoved[];
  readonly mutations: number;
  readonly bytes: number;
  readonly keyBytes: number;
}

/**
 * A move's commit: small, so that acks never wait long behind one (a move goes stream by stream,
 * so a small commit still writes few KV pages). With 900, the acks' p99 at 1,800 msgs/s over
 * 1,000 pumps was 54–59 ms; with 250, 34–38 ms. (Moves as background work instead of urgent made
 * no difference there: three alternating runs each, send → state p99 55–81 ms urgent, 71–90 ms
 * background.) With 100 against 250, at 4,000 msgs/s (seven alternating pairs): send → state p99
 * 67 / 18 / 26 / 23 / 19 / 33 / 75 ms against 53 / 41 / 35 / 52 / 29 / 45 / 45, while the MQTT
 * ingest acked as much (0.89–1.01 ×, three pairs) and did 1.04–1.17 × the tasks meanwhile. The
 * KV pays for more, smaller commits (the bench's "KV alone" rows: 41–45k msgs/s ingest only against
 * 59–60k, 19–20k with processing against 24k), but the main thread, not the KV, bounds Sluice.
 */
export const MOVE_MUTATIONS = 100;
const MOVE_KEY_BYTES = 60 * 1024;
/**
 * A move's commit in bytes as JSON counts them (`bytes` of each event): half of KV's commit limit,
 * since V8 stores a character outside Latin-1 in two bytes (a move of 66 events of 8,000 CJK
 * characters each, 100 mutations, was refused again and again).
 */
const MOVE_BYTES = KV_LIMITS.commitBytes / 2;

/**
 * One writer's account of its inbox (see `inbox.ts`), in memory: the events acked there and not yet
 * moved to their streams (read-your-writes until they move), the packs they sit in, the marker, and
 * the move under way, which goes stream by stream. The committer decides when to commit what.
 */
export class InboxLedger {
  /** Waiting events in the order they were acked (entry numbers `n` ascending). */
  readonly #unmoved: Unmoved[] = [];
  /**
   * The same events by stream, in seq order (a map keyed by stream and seq took 4% of the main
   * thread under the MQTT overload, growing and rehashing as tens of thousands of events waited).
   */
  readonly #unmovedOf = new Map<string, Unmoved[]>();
  /** Values of `withMove` sets whose move has not landed yet, by key. */
  readonly #withMove = new Map<string, unknown>();
  /** Events at the front of `#unmoved` already in the move under way (`#group` and the commit in flight). */
  #queuedMoves = 0;
  /** The move under way: its events not yet in a commit, by stream and seq. */
  #group: Unmoved[] = [];
  /** The number the next acked event gets. */
  #next = 1;
  #nextPack = 1;
  /** The moved-up-to marker as last written. */
  #marker = 0;

  /** Where a recovered inbox left off (the next entry's and pack's numbers). */
  restore(next: number, nextPack: number): void {
    this.#next = next;
    this.#nextPack = nextPack;
    this.#marker = next - 1;
  }

  /** Events acked and not yet moved. */
  get size(): number {
    return this.#unmoved.length;
  }

  /** The number the `i`-th event a commit acks gets. */
  entryNumber(i: number): number {
    return this.#next + i;
  }

  /** The key of the `i`-th pack a commit writes. */
  packKey(i: number): Deno.KvKey {
    return keys.inbox(this.#nextPack + i);
  }

  /** The marker as last written. */
  get marker(): number {
    return this.#marker;
  }

  /** The value of a `withMove` set still waiting for its move (undefined: read KV). */
  withMove<T>(key: Deno.KvKey): T | undefined {
    return this.#withMove.get(keyId(key)) as T | undefined;
  }

  /** An event acked but still in the inbox. */
  unmoved(stream: string, seq: number): AppendedEvent | undefined {
    const u = findSeq(this.#unmovedOf.get(stream), seq);
    return u && !u.moved ? { stream, seq, type: u.type, data: u.data, at: u.at } : undefined;
  }

  /** A stream's events from seq `from` on still in the inbox, in order, at most `limit`. */
  unmovedFrom(stream: string, from: number, limit: number): AppendedEvent[] {
    const out: AppendedEvent[] = [];
    for (const u of this.#unmovedOf.get(stream) ?? []) {
      if (out.length >= limit) break;
      if (u.seq >= from && !u.moved) out.push({ stream, seq: u.seq, type: u.type, data: u.data, at: u.at });
    }
    return out;
  }

  /** The lowest seq from `from` on of a stream's events still in the inbox (undefined: none). */
  firstUnmoved(stream: string, from: number): number | undefined {
    return this.#unmovedOf.get(stream)?.find((u) => u.seq >= from && !u.moved)?.seq;
  }

  /** A commit with these packs (see `pack`) and this marker landed: notes its events as waiting. */
  landed(packs: readonly Unmoved[][], marker: number): void {
    this.#marker = Math.max(this.#marker, marker);
    const now = performance.now();
    for (const entries of packs) {
      const pack: Pack = { p: this.#nextPack++, left: entries.length };
      for (const u of entries) {
        u.pack = pack;
        u.queuedAt = now;
        this.#unmoved.push(u);
        const ofStream = this.#unmovedOf.get(u.stream);
        if (ofStream) ofStream.push(u);
        else this.#unmovedOf.set(u.stream, [u]);
        for (const d of u.sets) this.#withMove.set(keyId(d.key), d.value);
        this.#next++;
      }
    }
  }

  /** Events waiting that no move has taken yet. */
  get waiting(): number {
    return this.#unmoved.length - this.#queuedMoves;
  }

  /** When the oldest event no move has taken yet was acked (`performance.now()`). */
  get oldestWaitingAt(): number {
    return this.#unmoved[this.#queuedMoves]!.queuedAt;
  }

  /** Whether the move under way has events left for another commit. */
  get moving(): boolean {
    return this.#group.length > 0;
  }

  /** Adds every waiting event to the move under way, grouped by stream. */
  startMove(): void {
    this.#group = this.#group.concat(this.#unmoved.slice(this.#queuedMoves)); // up to a ring's worth: no spread
    this.#group.sort((a, b) => a.stream < b.stream ? -1 : a.stream > b.stream ? 1 : a.seq - b.seq);
    this.#queuedMoves = this.#unmoved.length;
  }

  /** The next commit's share of the move under way (or of `again`, which KV refused). */
  nextMove(again?: readonly Unmoved[]): MoveShare {
    let bytes = 0, keyBytes = 0, mutations = 1;
    const move: Unmoved[] = [];
    const packs = new Set<Pack>();
    for (const u of again ?? this.#group) {
      const b = entryBytes(u) + 64;
      let k = u.stream.length + 24, m = 1 + u.sets.length;
      for (const d of u.sets) k += keySize(d.key);
      if (!packs.has(u.pack!)) m++, k += 16; // the pack's delete, once it empties
      if (
        move.length > 0 &&
        (mutations + m > MOVE_MUTATIONS || keyBytes + k > MOVE_KEY_BYTES || bytes + b > MOVE_BYTES)
      ) break;
      move.push(u);
      packs.add(u.pack!);
      bytes += b, keyBytes += k, mutations += m;
    }
    if (!again) this.#group.splice(0, move.length);
    return { move, mutations, bytes, keyBytes };
  }

  /** Puts events of a share KV refused back at the front of the move under way (it goes on with fewer). */
  putBack(entries: readonly Unmoved[]): void {
    this.#group = [...entries, ...this.#group];
  }

  /** The marker once the `moving` entries land: the end of the unbroken run of moved entries. */
  markerAfter(moving: ReadonlySet<Unmoved>): number {
    if (moving.size === 0) return this.#marker;
    let i = 0;
    while (i < this.#unmoved.length && (this.#unmoved[i]!.moved || moving.has(this.#unmoved[i]!))) i++;
    return i > 0 ? this.#unmoved[i - 1]!.n : this.#marker;
  }

  /** Some of the events reached their streams: forgets them, oldest first. */
  moved(move: readonly Unmoved[]): void {
    for (const u of move) {
      u.moved = true;
      u.pack!.left--;
      for (const d of u.sets) this.#withMove.delete(keyId(d.key));
    }
    // Each stream drops its moved events from the front of its list (moves go in seq order).
    for (const u of move) {
      const ofStream = this.#unmovedOf.get(u.stream);
      if (!ofStream?.[0]?.moved) continue;
      let k = 1;
      while (ofStream[k]?.moved) k++;
      if (k === ofStream.length) this.#unmovedOf.delete(u.stream);
      else ofStream.splice(0, k);
    }
    let k = 0;
    while (this.#unmoved[k]?.moved) k++;
    this.#unmoved.splice(0, k);
    this.#queuedMoves -= k;
  }
}

/** Splits a commit's inboxed events into packs of at most PACK_BYTES (estimated), in order. */
export function pack(inboxed: readonly Unmoved[]): Unmoved[][] {
  const packs: Unmoved[][] = [];
  let bytes = Infinity;
  for (const u of inboxed) {
    const b = entryBytes(u);
    if (bytes + b > PACK_BYTES) packs.push([]), bytes = 0;
    packs.at(-1)!.push(u);
    bytes += b;
  }
  return packs;
}

/**
 * Deletes, in the same commit, the packs whose last waiting events are `moving`; returns how many. It
 * builds no array for the committer to iterate: looping over one (a fresh array each commit, empty in
 * some) deoptimized its `#build` ("wrong map") 27 times in a 15 s MQTT load; 32 deopts of `#build` in
 * all, 5 without it.
 */
export function deleteEmptiedPacks(op: Deno.AtomicOperation, moving: ReadonlySet<Unmoved>): number {
  const left = new Map<Pack, number>();
  for (const u of moving) left.set(u.pack!, (left.get(u.pack!) ?? 0) + 1);
  let deleted = 0;
  left.forEach((k, pack) => {
    if (pack.left === k) op.delete(keys.inbox(pack.p)), deleted++;
  });
  return deleted;
}

/** An inbox entry's estimated size: its event and the keys it writes when it moves. */
function entryBytes(u: Unmoved): number {
  let b = u.bytes;
  for (const d of u.sets) b += keySize(d.key) + 128;
  return b;
}

/** The entry with `seq` in a list sorted by seq (binary search). */
function findSeq(list: readonly Unmoved[] | undefined, seq: number): Unmoved | undefined {
  if (!list) return undefined;
  let lo = 0, hi = list.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const at = list[mid]!.seq;
    if (at === seq) return list[mid];
    if (at < seq) lo = mid + 1;
    else hi = mid - 1;
  }
  return undefined;
}
