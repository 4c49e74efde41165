/**
 * Gathers the items pushed during one tick and hands them to `send` together at its end (one
 * message across a worker boundary instead of one per item). `clear` drops what has not gone yet.
 */
export function perTick<T>(send: (items: T[]) => void): { push(item: T): void; clear(): void } {
  let items: T[] = [];
  return {
    push(item) {
      if (items.push(item) > 1) return;
      queueMicrotask(() => {
        const due = items;
        items = [];
        if (due.length > 0) send(due);
      });
    },
    clear() {
      items = [];
    },
  };
}
