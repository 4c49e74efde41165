import assert from "node:assert/strict";
import { freePort, SluiceProcess } from "../crash/child.ts";
import { runBackup } from "../helpers/backup.ts";
import { ADMIN, integration, post, startTestSluice, waitFor } from "../helpers/sluice.ts";

/** What the backup's child process needs from this environment (a home, the npm cache). */
const BASE_ENV: Record<string, string> = Object.fromEntries(
  ["HOME", "PATH", "DENO_DIR", "DENO_TLS_CA_STORE"].flatMap((k) => Deno.env.get(k) ? [[k, Deno.env.get(k)!]] : []),
);

/** Reading `n` of a pump, as the sample gateway sends it (each one a second later). */
function reading(n: number): { method: string; params: { data: string } } {
  const at = new Date(Date.UTC(2026, 10, 25, 10, 0, 0) + n * 1000).toISOString();
  return { method: "blog/queues/processor", params: { data: `${20 + (n % 10)},1.5,40:-70,${at}` } };
}

/** Sends reading `n` and returns its task id once Sluice acknowledged it (202). */
async function send(url: string, token: string, n: number): Promise<string> {
  const res = await post(`${url}/channels/blog_queuing/invoke`, token, reading(n));
  const body = await res.json();
  if (res.status !== 202) throw new Error(`reading ${n}: ${res.status} ${JSON.stringify(body)}`);
  return body.taskId;
}

async function statusOf(url: string, taskId: string): Promise<string | number> {
  const res = await fetch(`${url}/tasks/${taskId}`, { headers: { authorization: `Bearer ${ADMIN}` } });
  if (res.status !== 200) return (await res.body?.cancel(), res.status);
  return (await res.json()).status;
}

async function allDone(url: string, taskIds: readonly string[]): Promise<boolean> {
  for (const id of taskIds) if (await statusOf(url, id) !== "done") return false;
  return true;
}

async function readingsOf(url: string, pump: string): Promise<number> {
  const res = await fetch(`${url}/pumps/${pump}`, { headers: { authorization: `Bearer ${ADMIN}` } });
  return res.status === 200 ? (await res.json()).readings : (await res.body?.cancel(), 0);
}

integration(
  "a backup taken while devices send holds every message acknowledged before it started, and Sluice runs on the copy",
  async () => {
    const first = await startTestSluice({ MQTT_PORT: "0" });
    const copyDir = await Deno.makeTempDir({ prefix: "sluice-backup-copy-" });
    let second;
    try {
      const pumps = ["bk-1", "bk-2", "bk-3"];
      const tokens = await Promise.all(pumps.map((p) => first.device(p)));
      // Acknowledged before the backup starts: all of these must be in the copy.
      const before = await Promise.all(tokens.map(async (token) => {
        const ids: string[] = [];
        for (let n = 0; n < 40; n++) ids.push(await send(first.url, token, n));
        return ids;
      }));

      // The devices keep sending while the backup runs.
      let sending = true;
      let during = 0;
      let slowestAckMs = 0;
      const senders = tokens.map(async (token) => {
        for (let n = 40; sending; n++) {
          const t = performance.now();
          await send(first.url, token, n);
          slowestAckMs = Math.max(slowestAckMs, performance.now() - t);
          during++;
        }
      });
      const backup = await runBackup(["--to", `${copyDir}/sluice.kv`], {
        ...BASE_ENV,
        KV_PATH: `${first.kvDir}/sluice.kv`,
      });
      const afterBackup = during;
      await new Promise((r) => setTimeout(r, 200));
      sending = false;
      await Promise.all(senders);
      assert.equal(backup.code, 0, backup.stderr);
      assert.match(
        backup.stdout,
        /^Backup of .*sluice\.kv written to .*sluice\.kv: \d+ bytes \(.* MiB\), \d+ pages, \d+ keys, [\d.]+ s$/m,
      );
      assert.match(backup.stdout, /^Checked: the copy opens with Deno KV; \d+ streams, 3 devices, \d+ channels, /m);
      // Sluice kept taking messages during the backup and after it: the backup took no lock of its.
      assert.ok(during > afterBackup, `acks after the backup: ${during - afterBackup}`);
      console.log(`acked during the backup: ${afterBackup}, slowest ack meanwhile: ${slowestAckMs.toFixed(0)} ms`);

      // A second Sluice on the copy (its own path, its own lock) while the first still runs.
      second = await startTestSluice({ MQTT_PORT: "0" }, copyDir);
      const s = second;
      await waitFor(() => allDone(s.url, before.flat()), 30_000, "the messages acked before the backup to run");
      for (const pump of pumps) {
        const readings = await readingsOf(s.url, pump);
        assert.ok(readings >= 40 && readings <= 40 + during, `${pump}: ${readings} readings`);
      }
      // What was acked from the inbox but not yet moved when the copy was taken has reached its stream: once
      // this Sluice moved its own (the readings it recorded since), no pack is left.
      await s.server.sluice.committer.flush();
      const inbox = await Array.fromAsync(s.server.sluice.kv.list({ prefix: ["inbox"] }));
      assert.equal(inbox.length, 0);
    } finally {
      await second?.close();
      await first.close();
      await Deno.remove(copyDir, { recursive: true });
    }
  },
);

integration(
  "a backup restored in place after a kill -9 starts despite the old process's lock file, without what came after it",
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "sluice-restore-" });
    const kvPath = `${dir}/sluice.kv`;
    const sluice = new SluiceProcess(freePort(), {
      ADMIN_TOKEN: ADMIN,
      KV_PATH: kvPath,
      MQTT_PORT: "0",
      WEATHER_API_URL: "off",
      RATE_LIMIT: "off",
    });
    try {
      await sluice.start();
      const created = await post(`${sluice.url}/admin/devices`, ADMIN, { id: "rs-1" });
      const { token } = await created.json();
      const kept: string[] = [];
      for (let n = 0; n < 30; n++) kept.push(await send(sluice.url, token, n));
      const backup = await runBackup(["--to", `${dir}/backup.kv`], { ...BASE_ENV, KV_PATH: kvPath });
      assert.equal(backup.code, 0, backup.stderr);
      const lost: string[] = [];
      for (let n = 30; n < 40; n++) lost.push(await send(sluice.url, token, n));
      await sluice.kill();

      // The README's restore: the old file goes aside with its log (-wal, -shm), the copy takes its name, the
      // lock file stays.
      await Deno.mkdir(`${dir}/before-restore`);
      for (const name of ["sluice.kv", "sluice.kv-wal", "sluice.kv-shm"]) {
        await Deno.rename(`${dir}/${name}`, `${dir}/before-restore/${name}`).catch(() => {});
      }
      await Deno.copyFile(`${dir}/backup.kv`, kvPath);
      assert.ok((await Deno.stat(`${kvPath}.lock`)).isFile, "the old process's lock file is still there");
      await sluice.start();

      await waitFor(() => allDone(sluice.url, kept), 30_000, "the messages acked before the backup to run");
      assert.equal(await readingsOf(sluice.url, "rs-1"), 30);
      for (const id of lost) assert.equal(await statusOf(sluice.url, id), 404, `task ${id} came after the backup`);
    } catch (err) {
      throw new Error(`${err}\nSluice's log:\n${sluice.log}`);
    } finally {
      await sluice.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
);
