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

Deno.test("deno task backup stopped with SIGTERM (a scheduler's timeout) removes its partial copy and exits 143", {
  ignore: Deno.build.os === "windows",
}, async () => {
  const dir = await Deno.makeTempDir({ prefix: "sluice-backup-term-" });
  try {
    // Big enough that the copy and its check take a while: ~60 MB.
    const kv = await Deno.openKv(`${dir}/sluice.kv`);
    await kv.set(["admin"], { hash: "x" });
    const value = "v".repeat(60_000);
    for (let i = 0; i < 1000; i += 10) {
      const op = kv.atomic();
      for (let j = i; j < i + 10; j++) op.set(["filler", j], value);
      await op.commit();
    }
    kv.close();
    await Deno.mkdir(`${dir}/out`);
    const root = new URL("./", import.meta.url).pathname;
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-read",
        "--allow-write",
        "--allow-env",
        "--unstable-kv",
        `${root}backup.ts`,
        "--to",
        "c.kv",
      ],
      env: { ...BASE_ENV, NO_COLOR: "1", KV_PATH: `${dir}/sluice.kv` },
      clearEnv: true,
      cwd: `${dir}/out`,
      stdout: "null",
      stderr: "piped",
    }).spawn();
    // Once the hidden partial copy is there, the copy is under way.
    const deadline = Date.now() + 30_000;
    while ([...Deno.readDirSync(`${dir}/out`)].length === 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 2));
    }
    assert.ok([...Deno.readDirSync(`${dir}/out`)].length > 0, "the copy started");
    child.kill("SIGTERM");
    const { code, stderr } = await child.output();
    const left = [...Deno.readDirSync(`${dir}/out`)].map((e) => e.name);
    if (left.includes("c.kv")) return; // the copy ended before the signal: nothing to remove
    assert.deepEqual(left, [], "nothing left beside --to");
    assert.equal(code, 143);
    assert.match(new TextDecoder().decode(stderr), /Backup failed: Interrupted: the partial copy was removed/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
