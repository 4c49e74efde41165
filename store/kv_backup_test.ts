import assert from "node:assert/strict";
import { BackupError, backupKvFile } from "./kv_backup.ts";
import { keys } from "./keys.ts";

/** A small KV file holding what Sluice writes at its first start, and a pump's stream. */
async function sluiceKv(path: string): Promise<void> {
  const kv = await Deno.openKv(path);
  await kv.atomic()
    .set(keys.channelDefaults(), true)
    .set(keys.device("pump-1"), { id: "pump-1" })
    .set(keys.channel("blog_queuing"), { name: "blog_queuing" })
    .set(keys.head("pump/pump-1"), 2)
    .set(keys.event("pump/pump-1", 1), { type: "ReadingRecorded" })
    .set(keys.event("pump/pump-1", 2), { type: "ReadingRecorded" })
    .commit();
  kv.close();
}

/** Runs `fn` with a fresh temp folder, removed afterwards. */
async function inTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "sluice-backup-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function refusal(p: Promise<unknown>): Promise<BackupError> {
  const err = await p.then(() => null, (e) => e);
  assert.ok(err instanceof BackupError, `expected a BackupError, got ${err}`);
  return err;
}

/** Names in `dir` other than those given: what a failed backup must not leave. */
async function othersIn(dir: string, ...expected: string[]): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) if (!expected.includes(e.name)) names.push(e.name);
  return names;
}

Deno.test("a backup copies the KV file, leaves the source's data as it was, and the copy opens with its keys", async () => {
  await inTempDir(async (dir) => {
    await sluiceKv(`${dir}/sluice.kv`);
    const before = await Deno.readFile(`${dir}/sluice.kv`);
    const result = await backupKvFile({ source: `${dir}/sluice.kv`, dest: `${dir}/copy.kv` });
    assert.deepEqual(await Deno.readFile(`${dir}/sluice.kv`), before);
    assert.equal(result.keys, 6);
    assert.equal(result.bytes, (await Deno.stat(`${dir}/copy.kv`)).size);
    assert.equal(result.check.streams, 1);
    assert.equal(result.check.devices, 1);
    assert.equal(result.check.channels, 1);
    const kv = await Deno.openKv(`${dir}/copy.kv`);
    try {
      assert.equal((await kv.get(keys.head("pump/pump-1"))).value, 2);
    } finally {
      kv.close();
    }
    // No half-written file is left beside the copy.
    assert.deepEqual((await othersIn(dir, "copy.kv")).filter((n) => n.includes("partial")), []);
  });
});

Deno.test("a backup never replaces an existing file without force, and replaces it with force", async () => {
  await inTempDir(async (dir) => {
    await sluiceKv(`${dir}/sluice.kv`);
    await Deno.writeTextFile(`${dir}/copy.kv`, "an older backup");
    const err = await refusal(backupKvFile({ source: `${dir}/sluice.kv`, dest: `${dir}/copy.kv` }));
    assert.equal(err.code, "destination_exists");
    assert.match(err.message, /copy\.kv exists: .*--force/);
    assert.equal(await Deno.readTextFile(`${dir}/copy.kv`), "an older backup");
    await backupKvFile({ source: `${dir}/sluice.kv`, dest: `${dir}/copy.kv`, force: true });
    const kv = await Deno.openKv(`${dir}/copy.kv`);
    kv.close();
    assert.deepEqual((await othersIn(dir, "copy.kv")).filter((n) => n.includes("partial")), []);
  });
});

Deno.test("a missing source is refused in one sentence, and nothing is written", async () => {
  await inTempDir(async (dir) => {
    const err = await refusal(backupKvFile({ source: `${dir}/nothing.kv`, dest: `${dir}/copy.kv` }));
    assert.equal(err.code, "source_missing");
    assert.equal(err.message, `No KV file at ${dir}/nothing.kv`);
    assert.deepEqual(await othersIn(dir), []);
  });
});

Deno.test("a file that is not a Sluice KV is refused: not SQLite, or a Deno KV without Sluice's keys", async () => {
  await inTempDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/notes.txt`, "x".repeat(5000));
    const text = await refusal(backupKvFile({ source: `${dir}/notes.txt`, dest: `${dir}/copy.kv` }));
    assert.equal(text.code, "not_sluice_kv");
    assert.match(text.message, /notes\.txt is not a Sluice KV file \(not an SQLite database\)/);
    const kv = await Deno.openKv(`${dir}/other.kv`);
    await kv.set(["something", "else"], 1);
    kv.close();
    const other = await refusal(backupKvFile({ source: `${dir}/other.kv`, dest: `${dir}/copy.kv` }));
    assert.equal(other.code, "not_sluice_kv");
    assert.match(other.message, /other\.kv is not a Sluice KV file \(a Deno KV file without Sluice's keys\)/);
    assert.deepEqual(await othersIn(dir, "notes.txt", "other.kv", "other.kv-wal", "other.kv-shm"), []);
  });
});

Deno.test("a destination folder that does not exist is refused", async () => {
  await inTempDir(async (dir) => {
    await sluiceKv(`${dir}/sluice.kv`);
    const err = await refusal(backupKvFile({ source: `${dir}/sluice.kv`, dest: `${dir}/no/such/copy.kv` }));
    assert.equal(err.code, "destination_dir_missing");
    assert.equal(err.message, `The destination folder ${dir}/no/such does not exist`);
  });
});

Deno.test("the destination may be neither the source nor a file SQLite keeps beside it, even with force", async () => {
  await inTempDir(async (dir) => {
    await sluiceKv(`${dir}/sluice.kv`);
    await Deno.symlink(`${dir}/sluice.kv`, `${dir}/alias.kv`);
    for (const dest of ["sluice.kv", "alias.kv", "sluice.kv-wal", "sluice.kv.lock"]) {
      const err = await refusal(backupKvFile({ source: `${dir}/sluice.kv`, dest: `${dir}/${dest}`, force: true }));
      assert.equal(err.code, "destination_in_use", dest);
    }
    // A KV that is open (or was not closed) at the destination: replacing its file would mix it with its log.
    await Deno.writeTextFile(`${dir}/copy.kv`, "");
    await Deno.writeTextFile(`${dir}/copy.kv-wal`, "");
    const err = await refusal(backupKvFile({ source: `${dir}/sluice.kv`, dest: `${dir}/copy.kv`, force: true }));
    assert.equal(err.code, "destination_in_use");
    assert.match(err.message, /copy\.kv-wal exists/);
  });
});

Deno.test("an interrupted backup leaves nothing at the destination", async () => {
  await inTempDir(async (dir) => {
    await sluiceKv(`${dir}/sluice.kv`);
    const signal = AbortSignal.abort();
    const err = await refusal(backupKvFile({ source: `${dir}/sluice.kv`, dest: `${dir}/copy.kv`, signal }));
    assert.equal(err.code, "interrupted");
    assert.deepEqual(await othersIn(dir, "sluice.kv", "sluice.kv-wal", "sluice.kv-shm"), []);
  });
});
