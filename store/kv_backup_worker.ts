/// <reference lib="deno.worker" />
/**
 * Copies a Deno KV file with SQLite's online backup API, off the main thread (the copy blocks its
 * thread while it runs, and the main thread reports progress meanwhile). Every page is copied in one
 * step, and one step is one read transaction: the copy is the file as of one commit, whatever Sluice
 * writes meanwhile (WAL mode: a reader never blocks the writer). Copied in several steps, the backup
 * would start over each time Sluice commits, and under steady writes never end. The source is opened
 * read-only.
 *
 * `VACUUM INTO` would do the same, but Deno's `node:sqlite` refuses ATTACH (which it uses) unless the
 * program runs with every permission.
 *
 * @module
 */
import { backup, DatabaseSync } from "node:sqlite";

/** What the main thread asks: copy `source` into `temp` (a file that does not exist yet). */
export interface CopyRequest {
  readonly source: string;
  readonly temp: string;
}

/** Why a copy failed, for the caller's message. */
export type CopyFailure = "not_sqlite" | "not_sluice" | "disk_full" | "other";

/** What the worker answers: the size to expect, then the outcome. */
export type CopyReply =
  | { readonly kind: "started"; readonly totalBytes: number }
  | { readonly kind: "done"; readonly pages: number; readonly pageSize: number; readonly keys: number }
  | { readonly kind: "failed"; readonly reason: CopyFailure; readonly message: string };

/** A one-string KV key as Deno KV stores it (tuple encoding: 0x02, the bytes, 0x00). */
function storedKey(name: string): Uint8Array {
  return new Uint8Array([2, ...new TextEncoder().encode(name), 0]);
}

/** Keys every Sluice KV holds from its first start (`["ch-defaults"]`, `["admin"]`, `["writer"]`). */
const SLUICE_KEYS = ["ch-defaults", "admin", "writer"].map(storedKey);

/** Pages per backup step: all of them, so the copy is one snapshot (Deno 2.5 refuses -1). */
const ALL_PAGES = 2 ** 31 - 1;

/** SQLite's primary result codes the caller tells apart. */
const SQLITE_FULL = 13;
const SQLITE_NOTADB = 26;

function failure(err: unknown): CopyReply {
  const message = err instanceof Error ? err.message : String(err);
  const code = Number((err as { errcode?: number })?.errcode) & 0xff;
  if (code === SQLITE_FULL || /disk is full|no space left/i.test(message)) {
    return { kind: "failed", reason: "disk_full", message };
  }
  if (code === SQLITE_NOTADB || /not a database/i.test(message)) {
    return { kind: "failed", reason: "not_sqlite", message };
  }
  return { kind: "failed", reason: "other", message };
}

async function copy({ source, temp }: CopyRequest, reply: (r: CopyReply) => void): Promise<void> {
  const db = new DatabaseSync(source, { readOnly: true });
  try {
    const table = db.prepare("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table' AND name = 'kv'").get();
    const marks = table?.n
      ? db.prepare(`SELECT count(*) AS n FROM kv WHERE k IN (${SLUICE_KEYS.map(() => "?").join(",")})`)
        .get(...SLUICE_KEYS)
      : undefined;
    if (!marks?.n) {
      const what = table?.n ? "a Deno KV file without Sluice's keys" : "an SQLite file, not a Deno KV one";
      return reply({ kind: "failed", reason: "not_sluice", message: what });
    }
    const pages = Number(db.prepare("PRAGMA page_count").get()?.page_count);
    const size = Number(db.prepare("PRAGMA page_size").get()?.page_size);
    reply({ kind: "started", totalBytes: pages * size });
    await backup(db, temp, { rate: ALL_PAGES });
  } finally {
    db.close();
  }
  const copied = new DatabaseSync(temp, { readOnly: true });
  try {
    reply({
      kind: "done",
      pages: Number(copied.prepare("PRAGMA page_count").get()?.page_count),
      pageSize: Number(copied.prepare("PRAGMA page_size").get()?.page_size),
      keys: Number(copied.prepare("SELECT count(*) AS n FROM kv").get()?.n),
    });
  } finally {
    copied.close();
  }
}

self.onmessage = async (e: MessageEvent<CopyRequest>) => {
  const reply = (r: CopyReply) => self.postMessage(r);
  try {
    await copy(e.data, reply);
  } catch (err) {
    reply(failure(err));
  }
};
