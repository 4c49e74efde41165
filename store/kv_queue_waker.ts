import type { Wake, Waker } from "../core/waker.ts";

interface WakeMessage {
  readonly sluiceWake: readonly (readonly [string, number | null])[];
}

function isWakeMessage(m: unknown): m is WakeMessage {
  return typeof m === "object" && m !== null && Array.isArray((m as WakeMessage).sluiceWake);
}

/**
 * Wake-ups through a Deno KV queue: one queue message per commit (not per message), enqueued in
 * the same atomic commit as the work, so a crash cannot lose it. The committing process is also
 * told directly, because a KV queue message takes tens of ms to arrive.
 */
export class KvQueueWaker implements Waker {
  #handler: ((wakes: readonly Wake[]) => void) | null = null;
  #closed = false;

  constructor(private readonly kv: Deno.Kv) {}

  attach(op: Deno.AtomicOperation, wakes: readonly Wake[]): void {
    op.enqueue({ sluiceWake: wakes.map((w) => [w.stream, w.seq ?? null]) } satisfies WakeMessage);
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
