/**
 * Calls `changed` each time `key` changes after now (another instance sharing the KV bumped it),
 * until `signal` aborts or KV closes. Changes seen while `changed` runs are not queued up: the
 * next one calls it again.
 */
export function onKeyChange(kv: Deno.Kv, key: Deno.KvKey, signal: AbortSignal, changed: () => unknown): void {
  const stream = kv.watch([key]);
  (async () => {
    let first = true; // the watch starts with the key's current value
    try {
      for await (const _ of stream) {
        if (signal.aborted) break;
        if (!first) await changed();
        first = false;
      }
    } catch {
      // the stream ends when KV closes
    }
  })();
  signal.addEventListener("abort", () => stream.cancel().catch(() => {}), { once: true });
}
