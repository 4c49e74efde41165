/**
 * A consistent copy of a local KV file while Sluice keeps writing to it: SQLite's backup API, in one
 * step, from a read-only connection (see `kv_backup_worker.ts`), into a hidden file beside the destination that
 * is synced, opened with Deno KV to check it, and only then given the destination's name. It takes
 * no lock of Sluice's and never writes to the source.
 *
 * @module
 */
import { basename, dirname, join, resolve } from "node:path";
import { BackupError } from "./kv_backup_error.ts";
import { checkDestination, place, SIDE_FILES, syncFolder } from "./kv_backup_target.ts";
import { checkKvCopy, type CopyCheck } from "./kv_copy_check.ts";
import type { CopyReply, CopyRequest } from "./kv_backup_worker.ts";

export { BackupError, type BackupErrorCode } from "./kv_backup_error.ts";

export interface BackupOptions {
  /** The KV file Sluice uses. */
  readonly source: string;
  /** Where the copy goes (a relative path is taken from the working folder). */
  readonly dest: string;
  /** Replace a file already at `dest`. */
  readonly force?: boolean;
  readonly onProgress?: (progress: BackupProgress) => void;
  /** How often `onProgress` is called while the copy is written (ms). */
  readonly progressEveryMs?: number;
  /** Stops the backup (Ctrl-C): nothing is left at the destination. */
  readonly signal?: AbortSignal;
}

export interface BackupProgress {
  readonly copiedBytes: number;
  /** The source's size at the copy's snapshot (the copy is about as big, without free pages). */
  readonly totalBytes: number;
  readonly elapsedMs: number;
}

export interface BackupResult {
  /** The source's real path. */
  readonly source: string;
  readonly dest: string;
  readonly bytes: number;
  readonly pages: number;
  readonly keys: number;
  readonly ms: number;
  readonly check: CopyCheck;
}

/** Copies the KV file `source` to `dest`, checks the copy, and says what it holds. */
export async function backupKvFile(options: BackupOptions): Promise<BackupResult> {
  const started = performance.now();
  const source = await sourceFile(options.source);
  const dest = resolve(options.dest);
  await checkDestination(source, dest, options.force ?? false);
  const temp = join(dirname(dest), `.${basename(dest)}.partial-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`);
  try {
    const copied = await copyInWorker({ source, temp }, started, options);
    await Deno.open(temp, { read: true, write: true }).then(async (f) => {
      await f.sync();
      f.close();
    });
    interrupted(options.signal);
    let check: CopyCheck;
    try {
      check = await checkKvCopy(temp);
    } catch (err) {
      throw new BackupError("check_failed", `The copy does not open as Sluice's KV: ${messageOf(err)}`);
    }
    interrupted(options.signal);
    await place(temp, dest, options.force ?? false);
    await syncFolder(dirname(dest));
    const bytes = (await Deno.stat(dest)).size;
    return { source, dest, bytes, pages: copied.pages, keys: copied.keys, ms: performance.now() - started, check };
  } catch (err) {
    if (!(err instanceof BackupError) && /no space left|os error 28/i.test(messageOf(err))) {
      throw new BackupError("disk_full", `The disk of ${dirname(dest)} is full: ${messageOf(err)}`);
    }
    throw err;
  } finally {
    for (const path of [temp, ...SIDE_FILES.map((s) => temp + s)]) await Deno.remove(path).catch(() => {});
  }
}

async function sourceFile(path: string): Promise<string> {
  const abs = resolve(path);
  let info;
  try {
    info = await Deno.stat(abs);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) throw new BackupError("source_missing", `No KV file at ${abs}`);
    throw err;
  }
  if (!info.isFile) throw new BackupError("not_sluice_kv", `${abs} is not a Sluice KV file (not a file)`);
  if (info.size > 0 && !await startsWith(abs, SQLITE_HEADER)) {
    throw new BackupError("not_sluice_kv", `${abs} is not a Sluice KV file (not an SQLite database)`);
  }
  return await Deno.realPath(abs);
}

/** The first bytes of every SQLite database file (SQLite on Deno 2.5 only says "failed to prepare statement"). */
const SQLITE_HEADER = new TextEncoder().encode("SQLite format 3\0");

async function startsWith(path: string, prefix: Uint8Array): Promise<boolean> {
  const file = await Deno.open(path, { read: true });
  try {
    const head = new Uint8Array(prefix.length);
    let n = 0;
    while (n < head.length) {
      const read = await file.read(head.subarray(n));
      if (read === null) break;
      n += read;
    }
    return n === head.length && head.every((b, i) => b === prefix[i]);
  } finally {
    file.close();
  }
}

/** Runs the copy in a worker, calling `onProgress` with the copy's size meanwhile. */
function copyInWorker(
  request: CopyRequest,
  started: number,
  options: BackupOptions,
): Promise<{ pages: number; keys: number }> {
  const worker = new Worker(new URL("./kv_backup_worker.ts", import.meta.url), { type: "module" });
  const done = Promise.withResolvers<{ pages: number; keys: number }>();
  let totalBytes = 0;
  let finished = false;
  const timer = setInterval(async () => {
    const copiedBytes = await Deno.stat(request.temp).then((s) => s.size, () => 0);
    if (totalBytes > 0 && !finished) {
      options.onProgress?.({ copiedBytes, totalBytes, elapsedMs: performance.now() - started });
    }
  }, options.progressEveryMs ?? 500);
  const stop = () => done.reject(new BackupError("interrupted", "Interrupted: the partial copy was removed"));
  options.signal?.addEventListener("abort", stop, { once: true });
  worker.onmessage = (e: MessageEvent<CopyReply>) => {
    const reply = e.data;
    if (reply.kind === "started") totalBytes = reply.totalBytes;
    else if (reply.kind === "done") done.resolve({ pages: reply.pages, keys: reply.keys });
    else done.reject(copyError(reply, request, totalBytes));
  };
  worker.onerror = (e) => {
    e.preventDefault();
    done.reject(new BackupError("copy_failed", `The copy failed: ${e.message}`));
  };
  worker.postMessage(request);
  return done.promise.finally(() => {
    finished = true;
    clearInterval(timer);
    options.signal?.removeEventListener("abort", stop);
    worker.terminate();
  });
}

function copyError(reply: CopyReply & { kind: "failed" }, request: CopyRequest, totalBytes: number): BackupError {
  switch (reply.reason) {
    case "not_sqlite":
      return new BackupError("not_sluice_kv", `${request.source} is not a Sluice KV file (not an SQLite database)`);
    case "not_sluice":
      return new BackupError("not_sluice_kv", `${request.source} is not a Sluice KV file (${reply.message})`);
    case "disk_full":
      return new BackupError(
        "disk_full",
        `The disk of ${dirname(request.temp)} is full (the copy needs about ${mib(totalBytes)}): ${reply.message}`,
      );
    case "other":
      return new BackupError("copy_failed", `The copy failed: ${reply.message}`);
  }
}

function interrupted(signal?: AbortSignal): void {
  if (signal?.aborted) throw new BackupError("interrupted", "Interrupted: the partial copy was removed");
}

/** `n` bytes in MiB, one decimal. */
export function mib(n: number): string {
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
