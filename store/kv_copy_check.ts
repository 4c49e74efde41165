/**
 * Checks a copy of Sluice's KV file the way Sluice will use it: opens it with Deno KV and counts a
 * few key families. The copy is a file nobody else uses yet; Deno KV sets WAL mode when it opens it
 * and folds its log back into the file when it closes, which this waits for.
 *
 * @module
 */
import { DatabaseSync } from "node:sqlite";
import { keys } from "./keys.ts";

/** How many keys of each family the copy holds. */
export interface CopyCheck {
  /** Event streams (one head key each): task streams, pumps, topics. */
  readonly streams: number;
  readonly devices: number;
  readonly channels: number;
  /** Processing cursors: of task streams and of subscriber scripts. */
  readonly cursors: number;
  /** Inbox packs: acknowledged tasks Sluice moves to their streams when it starts on the copy. */
  readonly inboxPacks: number;
  readonly deadLetters: number;
}

const FAMILIES: Record<keyof CopyCheck, Deno.KvKey> = {
  streams: keys.heads(),
  devices: keys.devices(),
  channels: keys.channels(),
  cursors: keys.allCursors(),
  inboxPacks: keys.inboxAll(),
  deadLetters: keys.deadLetters(),
};

/** How long `checkKvCopy` waits for Deno KV to remove the copy's `-wal` and `-shm` files after closing it. */
const CLOSE_WAIT_MS = 2000;

/** Opens the copy at `path` with Deno KV and counts its key families; throws when it is not Sluice's. */
export async function checkKvCopy(path: string): Promise<CopyCheck> {
  const kv = await Deno.openKv(path);
  let check: CopyCheck;
  try {
    const [defaults, admin] = await kv.getMany([keys.channelDefaults(), keys.admin()]);
    if (defaults.versionstamp === null && admin.versionstamp === null) {
      throw new Error("the copy opens but holds none of Sluice's keys");
    }
    const counts = {} as Record<keyof CopyCheck, number>;
    for (const [name, prefix] of Object.entries(FAMILIES) as [keyof CopyCheck, Deno.KvKey][]) {
      counts[name] = 0;
      for await (const _ of kv.list({ prefix }, { batchSize: 1000 })) counts[name]++;
    }
    check = counts;
  } finally {
    kv.close();
  }
  // The copy is moved into place as one file: its log must be folded back into it first. Deno KV does
  // that when its connection goes, which on a busy machine can be later than `close()`: then fold it here.
  const deadline = Date.now() + CLOSE_WAIT_MS;
  while (await exists(`${path}-wal`) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  if (await exists(`${path}-wal`)) foldLog(path);
  return check;
}

/** Folds a SQLite file's write-ahead log into it and empties the log; throws when a writer holds it. */
function foldLog(path: string): void {
  const db = new DatabaseSync(path);
  try {
    const result = db.prepare("PRAGMA wal_checkpoint(TRUNCATE)").get() as { busy: number; log: number } | undefined;
    if (!result || result.busy !== 0) throw new Error(`the copy's log ${path}-wal could not be folded into it`);
  } finally {
    db.close();
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
}
