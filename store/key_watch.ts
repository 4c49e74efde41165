/**
 * Calls `changed` whenever `key` changes (another instance sharing the KV bumped it), and once when
 * the watch starts, since the key may have changed before. A watch that fails is opened again a
 * second later (and calls `changed` again, for what it missed); it stops when `signal` aborts or
 * KV closes. Changes seen while `changed` runs are not queued up: the next one calls it again.
 */
export function onKeyChange(
  kv: Deno.Kv,
  key: Deno.KvKey,
  signal: AbortSignal,
  changed: () => unknown,
  log: (line: string) => void = () => {},
): void {
  (async () => {
    while (!signal.aborted) {
      const stream = kv.watch([key]);
      const cancel = () => stream.cancel().catch(() => {});
      signal.addEventListener("abort", cancel, { once: true });
      try {
        for await (const _ of stream) {
          if (signal.aborted) break;
          await changed();
        }
        return; // KV closed
      } catch (err) {
        if (signal.aborted) return;
        log(`Watch on ${JSON.stringify(key)} failed (${err}); opening it again in 1 s`);
      } finally {
        signal.removeEventListener("abort", cancel);
      }
      await new Promise((r) => setTimeout(r, 1000));
    }
  })();
}
