import assert from "node:assert/strict";
import { backupFlags } from "./backup.ts";
import { runBackup } from "./tests/helpers/backup.ts";

/** What a child process needs beyond a clean environment (a cache for the npm packages, a home). */
const BASE_ENV: Record<string, string> = Object.fromEntries(
  ["HOME", "PATH", "DENO_DIR", "DENO_TLS_CA_STORE"].flatMap((k) => Deno.env.get(k) ? [[k, Deno.env.get(k)!]] : []),
);

Deno.test("backup flags: --to is required, --force is optional, anything else is refused in one line", () => {
  assert.deepEqual(backupFlags(["--to", "copy.kv"]), { to: "copy.kv", force: false });
  assert.deepEqual(backupFlags(["--to=copy.kv", "--force"]), { to: "copy.kv", force: true });
  assert.equal(backupFlags(["--help"]), "help");
  assert.equal(backupFlags(["-h"]), "help");
  assert.throws(() => backupFlags([]), /^Error: --to <file> is required/);
  assert.throws(() => backupFlags(["--to", " "]), /--to <file> is required/);
  assert.throws(() => backupFlags(["--to", "a.kv", "b.kv"]), /Unexpected argument 'b\.kv'/);
  assert.throws(() => backupFlags(["--too", "a.kv"]), /Unknown option '--too'/);
});

Deno.test("deno task backup on Deno Deploy's managed KV says there is no file and exits 1", async () => {
  const res = await runBackup(["--to", "/tmp/never.kv"], { ...BASE_ENV, DENO_DEPLOY: "true" });
  assert.equal(res.code, 1);
  assert.match(res.stderr, /On Deno Deploy \(DENO_DEPLOY=true\) Sluice uses the managed KV: there is no file/);
});

Deno.test("deno task backup without a KV file names the path it looked at and exits 1", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sluice-backup-cli-" });
  try {
    const res = await runBackup(["--to", "copy.kv"], { ...BASE_ENV, KV_PATH: "missing/sluice.kv" }, dir);
    assert.equal(res.code, 1);
    assert.equal(
      res.stderr.trim(),
      `Backup failed: No KV file at ${await Deno.realPath(dir)}/missing/sluice.kv ` +
        `(KV_PATH=missing/sluice.kv, from ${await Deno.realPath(dir)}; set KV_PATH as Sluice has it)`,
    );
    assert.deepEqual([...Deno.readDirSync(dir)], []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("deno task backup --help exits 0 with the usage; a bad flag exits 2 with it", async () => {
  const help = await runBackup(["--help"], BASE_ENV);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /^deno task backup --to <file> \[--force\]/);
  const bad = await runBackup(["--to"], BASE_ENV);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /Option '--to <value>' argument missing[\s\S]*deno task backup --to <file>/);
});
