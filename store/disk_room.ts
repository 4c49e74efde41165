import { statfsSync } from "node:fs";
import type { Clock } from "../core/clock.ts";
import { describeError } from "../core/errors.ts";

/** How often the free space is read again (one statfs call, a few µs). */
const READ_EVERY_MS = 1000;

const MiB = 1024 * 1024;

/**
 * The free space of the KV file's filesystem, kept above a margin: below it Sluice refuses its own
 * writes (503 `unavailable`), which leaves SQLite room for Deno KV's own writes. On a full disk Deno
 * KV's background thread panics when its queue dequeue or its sweep of expired keys cannot write,
 * and takes the process down (seen on 2.9.6: within 30 ms of the disk filling under load, and about
 * a minute after a key was due to expire; and at every start on that disk).
 */
export class DiskRoom {
  #free = Infinity;
  #readAt = -Infinity;
  #unreadable = false;

  constructor(
    private readonly dir: string,
    private readonly minFreeBytes: number,
    private readonly clock: Clock,
    private readonly log: (line: string) => void = () => {},
    /** Bytes free for this process in `dir`'s filesystem. */
    private readonly freeIn: (dir: string) => number = freeBytesIn,
  ) {}

  /** Why writes are refused now, or null while there is room (read at most once a second). */
  shortage(): string | null {
    const now = this.clock.now();
    if (now - this.#readAt >= READ_EVERY_MS) {
      this.#readAt = now;
      try {
        this.#free = this.freeIn(this.dir);
        this.#unreadable = false;
      } catch (err) {
        this.#free = Infinity; // unknown: KV itself says when it cannot write
        if (!this.#unreadable) {
          this.log(
            `The free space in ${this.dir} cannot be read (${describeError(err)}): KV_MIN_FREE_MB is not applied`,
          );
        }
        this.#unreadable = true;
      }
    }
    if (this.#free >= this.minFreeBytes) return null;
    return `Sluice holds writes back: the disk is nearly full (${(this.#free / MiB).toFixed(1)} MiB free in ` +
      `${this.dir}, under the ${this.minFreeBytes / MiB} MiB KV_MIN_FREE_MB keeps for Deno KV's own work)`;
  }
}

function freeBytesIn(dir: string): number {
  const s = statfsSync(dir);
  return Number(s.bavail) * Number(s.bsize);
}
