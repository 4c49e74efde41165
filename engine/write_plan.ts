import type { AppendOp, NewEvent, Position, SetOp, WriteRequest, WriteResult } from "../store/committer.ts";

type Landed = (positions: readonly Position[], at: number) => void;

/** Writes gathered from several steps into one request, with hooks run once it landed. */
export class WritePlan {
  readonly appends: AppendOp[] = [];
  readonly sets: SetOp[] = [];
  readonly deletes: Deno.KvKey[] = [];
  readonly checks: Deno.AtomicCheck[] = [];
  readonly wake = new Set<string>();
  readonly #landed: Landed[] = [];

  /** Adds an append; `landed` gets its position once the commit landed. */
  append(
    stream: string,
    event: NewEvent,
    landed?: (position: Position, at: number) => void,
    expireIn?: number,
    size?: number,
  ): void {
    const index = this.appends.length;
    this.appends.push({ stream, event, expireIn, size });
    if (landed) this.#landed.push((positions, at) => landed(positions[index]!, at));
  }

  /** Sets a key to a value derived from the position of the last append made so far. */
  setFromLastAppend(key: Deno.KvKey, value: (position: Position) => unknown, expireIn?: number): void {
    const index = this.appends.length - 1;
    this.sets.push({ key, derive: (positions) => value(positions[index]!), expireIn });
  }

  /** Takes over everything another plan gathered. */
  merge(other: WritePlan): void {
    const offset = this.appends.length;
    this.appends.push(...other.appends);
    for (const s of other.sets) {
      this.sets.push("derive" in s ? { ...s, derive: (p) => s.derive(p.slice(offset)) } : s);
    }
    this.deletes.push(...other.deletes);
    this.checks.push(...other.checks);
    for (const w of other.wake) this.wake.add(w);
    for (const l of other.#landed) this.#landed.push((p, at) => l(p.slice(offset), at));
  }

  get empty(): boolean {
    return this.appends.length + this.sets.length + this.deletes.length === 0;
  }

  toRequest(): WriteRequest {
    return {
      appends: this.appends,
      sets: this.sets,
      deletes: this.deletes,
      checks: this.checks,
      wake: [...this.wake],
    };
  }

  /** Runs the hooks of a landed commit. */
  landed(result: WriteResult): void {
    for (const l of this.#landed) l(result.positions, result.at);
  }
}
