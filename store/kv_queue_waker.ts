import type { Wake, Waker } from "../core/waker.ts";

interface WakeMessage {
  readonly sluiceWake: readonly (readonly [string, number | null])[];
}

function isWakeMessage(m: unknown): m is WakeMessage {
  return typeof m === "object" && m !== null && Array.isArray((m as WakeMessage).sluiceWake);
}

/**
 * Wake-ups through a Deno KV queue, enqueued in the same atomic commit as the work they announce.
 * A KV queue message takes tens of ms to arrive and costs a commit a third of its time, so the
 * committing process is told directly, and the queue carries one message per `everyMs` at most,
 * naming every stream woken since the last one. What a crash leaves between two of them, the
 * start-up sweep finds.
 */
export class KvQueueWaker implements Waker {
  #handler: ((wakes: readonly Wake[]) => void) | null = null;
  #closed = false;
  readonly #pending = new Map<string, number | null>();
  #lastEnqueue = 0;

  constructor(private readonly kv: Deno.Kv, private readonly everyMs = 200) {}

  attach(op: Deno.AtomicOperation, wakes: readonly Wake[]): boolean {
    for (const w of wakes) this.#pending.set(w.stream, w.seq ?? null);
    const now = Date.now();
    if (now - this.#lastEnqueue < this.everyMs && this.#pending.size < 2000) return false;
    op.enqueue({ sluiceWake: [...this.#pending] } satisfies WakeMessage);
    this.#pending.clear();
    this.#lastEnqueue = now;
    return true;
  }

  committed(wakes: readonly Wake[]): void {
    this.#handler?.(wakes);
  }

  async later(stream: string, delayMs: number): Promise<void> {
    await this.kv.enqueue({ sluiceWake: [[stream, null]] } satisfies WakeMessage, { delay: Math.max(0, delayMs) });
  }

  listen(handler: (wakes: readonly Wake[]) => void): void {
    this.#handler = handler;
    this.kv.listenQueue((m: unknown) => {
      if (this.#closed || !isWakeMessage(m)) return;
      handler(m.sluiceWake.map(([stream, seq]) => (seq === null ? { stream } : { stream, seq })));
    }).catch(() => {});
  }

  close(): void {
    this.#closed = true;
    this.#handler = null;
  }
}
