/**
 * `deno task backup --to <file> [--force]`: a consistent copy of the KV file Sluice uses (KV_PATH,
 * as Sluice reads it) while Sluice runs, checked by opening it with Deno KV. See the README's
 * "Backups" for restoring it.
 *
 * @module
 */
import { isAbsolute, resolve } from "node:path";
import { parseArgs } from "node:util";
import { loadKvLocation } from "./config.ts";
import { BackupError, backupKvFile, type BackupProgress, type BackupResult, mib } from "./store/kv_backup.ts";

/** What `--help` prints. */
export const USAGE = `deno task backup --to <file> [--force]
Writes a consistent copy of the KV file Sluice uses (KV_PATH, default data/sluice.kv) while Sluice
runs, then opens the copy with Deno KV to check it. The copy holds everything acknowledged before it
started. It takes no lock and never writes to Sluice's file.
  --to <file>  where the copy goes (its folder must exist)
  --force      replace a file already there
  -h, --help   this text
Restore: stop Sluice, move the KV file aside with its -wal and -shm files, copy the backup to its
place (or set KV_PATH to the copy), start Sluice. The README's "Backups" section has the details.`;

/** The checked flags. */
export interface BackupFlags {
  readonly to: string;
  readonly force: boolean;
}

/** The flags `args` give, `"help"` for `--help`; throws an Error of one line for anything else. */
export function backupFlags(args: readonly string[]): BackupFlags | "help" {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...args],
      options: {
        to: { type: "string" },
        force: { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
    });
  } catch (err) {
    throw new Error(err instanceof Error ? err.message : String(err));
  }
  const { values } = parsed;
  if (values.help) return "help";
  const to = values.to?.trim();
  if (!to) throw new Error("--to <file> is required: where the copy goes");
  return { to, force: values.force };
}

/** `copied 45.2 MiB of ~160.8 MiB, 1.2 s` */
export function progressLine(p: BackupProgress): string {
  return `copied ${mib(p.copiedBytes)} of ~${mib(p.totalBytes)}, ${(p.elapsedMs / 1000).toFixed(1)} s`;
}

/** The summary: one line for the copy, one for its check. */
export function summaryLines(r: BackupResult): string[] {
  const c = r.check;
  return [
    `Backup of ${r.source} written to ${r.dest}: ${r.bytes} bytes (${mib(r.bytes)}), ${r.pages} pages, ` +
    `${r.keys} keys, ${(r.ms / 1000).toFixed(2)} s`,
    `Checked: the copy opens with Deno KV; ${c.streams} streams, ${c.devices} devices, ${c.channels} channels, ` +
    `${c.cursors} cursors, ${c.inboxPacks} inbox packs (moved to their streams when Sluice starts on it), ` +
    `${c.deadLetters} dead letters`,
  ];
}

async function main(): Promise<number> {
  let flags;
  try {
    flags = backupFlags(Deno.args);
  } catch (err) {
    console.error(`${err instanceof Error ? err.message : String(err)}\n\n${USAGE}`);
    return 2;
  }
  if (flags === "help") {
    console.log(USAGE);
    return 0;
  }
  let where;
  try {
    where = loadKvLocation(Deno.env.toObject());
  } catch (err) {
    console.error(err instanceof Error ? err.message : String(err));
    return 1;
  }
  if (where.kind !== "file") {
    console.error(
      where.kind === "managed"
        ? "On Deno Deploy (DENO_DEPLOY=true) Sluice uses the managed KV: there is no file to back up here"
        : "KV_PATH is :memory:: Sluice keeps nothing on disk, there is nothing to back up",
    );
    return 1;
  }
  // `deno task` runs in the project's folder, as Sluice does (KV_PATH is taken from there); --to is
  // the caller's path, from the folder the command was typed in.
  const dest = isAbsolute(flags.to) ? flags.to : resolve(Deno.env.get("INIT_CWD") ?? Deno.cwd(), flags.to);
  const tty = Deno.stderr.isTerminal();
  let shown = false;
  const abort = new AbortController();
  // Ctrl-C, or a scheduler's timeout (`timeout`, systemd): either way the partial copy is removed.
  const signals: Deno.Signal[] = Deno.build.os === "windows" ? ["SIGINT"] : ["SIGINT", "SIGTERM"];
  let stoppedBy = "SIGINT" as Deno.Signal;
  const listeners = signals.map((signal) => {
    const listener = () => {
      if (!abort.signal.aborted) stoppedBy = signal;
      abort.abort();
    };
    Deno.addSignalListener(signal, listener);
    return [signal, listener] as const;
  });
  try {
    const result = await backupKvFile({
      source: where.path,
      dest,
      force: flags.force,
      signal: abort.signal,
      progressEveryMs: tty ? 250 : 1000,
      onProgress: (p) => {
        if (p.elapsedMs < 1000) return;
        shown = true;
        if (tty) Deno.stderr.writeSync(new TextEncoder().encode(`\r${progressLine(p)}   `));
        else console.error(progressLine(p));
      },
    });
    if (shown && tty) Deno.stderr.writeSync(new TextEncoder().encode("\n"));
    for (const line of summaryLines(result)) console.log(line);
    return 0;
  } catch (err) {
    if (shown && tty) Deno.stderr.writeSync(new TextEncoder().encode("\n"));
    if (!(err instanceof BackupError)) throw err;
    const hint = err.code === "source_missing"
      ? ` (KV_PATH${Deno.env.get("KV_PATH") ? `=${Deno.env.get("KV_PATH")}` : " unset: data/sluice.kv"}, ` +
        `from ${Deno.cwd()}; set KV_PATH as Sluice has it)`
      : "";
    console.error(`Backup failed: ${err.message}${hint}`);
    return err.code === "interrupted" ? (stoppedBy === "SIGTERM" ? 143 : 130) : 1;
  } finally {
    for (const [signal, listener] of listeners) Deno.removeSignalListener(signal, listener);
  }
}

if (import.meta.main) Deno.exit(await main());
