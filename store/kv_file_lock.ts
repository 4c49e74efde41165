/**
 * How long start-up waits for a KV file another process holds: longer than a graceful stop (5 s),
 * so a restart that overlaps the old process's stop still starts.
 */
const WAIT_MS = 6000;
const RETRY_MS = 100;

type TryLock = (exclusive?: boolean) => Promise<boolean>;

/**
 * An exclusive lock on `<KV file>.lock`, held while Sluice uses the file, in either mode. A second
 * process on a file in use stops at start-up with a clear error: in local mode it would take the
 * writer epoch over (leaving the first refusing every write); in deploy mode the two would not see
 * each other's changes (a local KV's watch stays within its process) and SQLite would refuse their
 * writes to each other ("database is locked"). The kernel drops the lock when its holder exits,
 * kill -9 included.
 */
export async function lockKvFile(
  path: string,
  log: (line: string) => void = () => {},
): Promise<{ release(): void }> {
  // Locked by its real path: the same file reached through a symlink is the same file.
  const lockPath = `${await realPathOf(path)}.lock`;
  const file = await Deno.open(lockPath, { create: true, write: true });
  const release = () => {
    try {
      file.close();
    } catch { /* closed already */ }
  };
  let held: boolean;
  try {
    held = await take(file, () => log(`${path} is in use by another process; waiting for it to stop`));
  } catch (err) {
    release();
    throw err;
  }
  if (!held) {
    release();
    throw new Error(
      `Another process is using ${path} (it holds ${lockPath}): stop it, or give this one its own KV_PATH`,
    );
  }
  return { release };
}

async function take(file: Deno.FsFile, waiting: () => void): Promise<boolean> {
  const tryLock = (file as unknown as { tryLock?: TryLock }).tryLock?.bind(file);
  const deadline = Date.now() + WAIT_MS;
  if (tryLock) {
    for (let first = true;; first = false) {
      if (await tryLock(true)) return true;
      if (first) waiting();
      if (Date.now() >= deadline) return false;
      await new Promise((r) => setTimeout(r, RETRY_MS));
    }
  }
  // A Deno without tryLock (2.5): a blocking lock against the clock (the process exits if it loses).
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      file.lock(true).then(() => true),
      new Promise<false>((resolve) => timer = setTimeout(() => resolve(false), WAIT_MS)),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** The path with symlinks resolved; for a file not created yet, its folder's real path and its name. */
async function realPathOf(path: string): Promise<string> {
  try {
    return await Deno.realPath(path);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
    const slash = path.lastIndexOf("/");
    const dir = slash < 0 ? "." : slash === 0 ? "/" : path.slice(0, slash);
    return `${await Deno.realPath(dir)}/${path.slice(slash + 1)}`;
  }
}
