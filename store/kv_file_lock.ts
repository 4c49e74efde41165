/** How long start-up waits for the lock before saying another process holds it. */
const WAIT_MS = 1500;

/**
 * An exclusive lock on `<KV file>.lock`, held while one Sluice uses the file. A second process on
 * the same file stops at start-up with a clear error instead of taking the writer epoch over (which
 * would leave the first refusing every write). The kernel drops the lock when its holder exits,
 * kill -9 included, so a restart after a crash takes it at once.
 */
export async function lockKvFile(path: string): Promise<{ release(): void }> {
  const file = await Deno.open(`${path}.lock`, { create: true, write: true });
  let timer: ReturnType<typeof setTimeout> | undefined;
  const held = await Promise.race([
    file.lock(true).then(() => true),
    new Promise<false>((resolve) => timer = setTimeout(() => resolve(false), WAIT_MS)),
  ]);
  clearTimeout(timer);
  if (!held) {
    throw new Error(
      `Another process is using ${path} (it holds ${path}.lock): stop it, or give this one its own KV_PATH`,
    );
  }
  return { release: () => file.close() };
}
