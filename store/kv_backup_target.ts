/**
 * Where a backup goes: checked before the copy starts (never the KV file or a KV in use; an existing
 * file only with force), and the checked copy given its name at the end.
 *
 * @module
 */
import { basename, dirname, join } from "node:path";
import { BackupError } from "./kv_backup_error.ts";

/** Files SQLite and Sluice keep beside a KV file. */
export const SIDE_FILES = ["-wal", "-shm", "-journal"];

/** Refuses a destination the copy must not take; `source` is the KV file's real path. */
export async function checkDestination(source: string, dest: string, force: boolean): Promise<void> {
  const folder = dirname(dest);
  const info = await Deno.stat(folder).catch((err) => {
    if (err instanceof Deno.errors.NotFound) return null;
    throw err;
  });
  if (!info?.isDirectory) {
    throw new BackupError("destination_dir_missing", `The destination folder ${folder} does not exist`);
  }
  const existing = await Deno.lstat(dest).catch(() => null);
  const real = existing
    ? await Deno.realPath(dest).catch(() => dest)
    : join(await Deno.realPath(folder), basename(dest));
  if ([source, ...SIDE_FILES.map((s) => source + s), `${source}.lock`].includes(real)) {
    throw new BackupError(
      "destination_in_use",
      `The destination ${dest} is the KV file Sluice uses (or one of its files): choose another path`,
    );
  }
  for (const side of SIDE_FILES.map((s) => dest + s)) {
    if (await Deno.lstat(side).then(() => true, () => false)) {
      throw new BackupError(
        "destination_in_use",
        `${side} exists: a KV at ${dest} is open, or was not closed cleanly. Choose another path, or stop ` +
          `what uses it and remove ${dest}-wal and ${dest}-shm`,
      );
    }
  }
  if (existing?.isDirectory) throw new BackupError("destination_exists", `The destination ${dest} is a folder`);
  if (existing && !force) {
    throw new BackupError("destination_exists", `${dest} exists: choose another path, or replace it with --force`);
  }
}

/** Gives the checked copy its name: never over a file that appeared meanwhile, unless `force`. */
export async function place(temp: string, dest: string, force: boolean): Promise<void> {
  if (force) return await Deno.rename(temp, dest);
  try {
    await Deno.link(temp, dest);
  } catch (err) {
    if (err instanceof Deno.errors.AlreadyExists) {
      throw new BackupError("destination_exists", `${dest} appeared while the copy was written; the copy was dropped`);
    }
    // A file system without hard links: check, then rename.
    if (await Deno.lstat(dest).then(() => true, () => false)) {
      throw new BackupError("destination_exists", `${dest} appeared while the copy was written; the copy was dropped`);
    }
    await Deno.rename(temp, dest);
  }
}

/** Makes the new name durable (best effort: not every platform syncs a folder). */
export async function syncFolder(folder: string): Promise<void> {
  try {
    const f = await Deno.open(folder, { read: true });
    try {
      await f.sync();
    } finally {
      f.close();
    }
  } catch { /* not supported here */ }
}
