import assert from "node:assert/strict";
import { freePort, SluiceProcess } from "../crash/child.ts";
import { claimWriterEpoch } from "../../store/writer_epoch.ts";
import { keys } from "../../store/keys.ts";
import { ADMIN, integration, post, startTestSluice, waitFor } from "../helpers/sluice.ts";
import { fakeWeather } from "../helpers/weather.ts";

const root = new URL("../../", import.meta.url).pathname;

/** Runs `deno task start`'s entry point until it exits by itself; its exit code and stderr. */
async function startToExit(env: Record<string, string>): Promise<{ code: number; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "--unstable-kv", "--unstable-cron", `${root}main.ts`],
    env: { HOSTNAME: "127.0.0.1", MQTT_PORT: "off", WEATHER_API_URL: "off", ...env },
    stdout: "null",
    stderr: "piped",
    signal: AbortSignal.timeout(20_000),
  }).output();
  return { code: out.code, stderr: new TextDecoder().decode(out.stderr) };
}

integration(
  "a second Sluice on a KV file in use (by any path to it) stops at start-up with one line; the first goes on",
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "sluice-lock-" });
    const first = new SluiceProcess(freePort(), {
      KV_PATH: `${dir}/sluice.kv`,
      MQTT_PORT: "off",
      WEATHER_API_URL: "off",
    });
    try {
      await first.start();
      const second = await startToExit({ PORT: String(freePort()), KV_PATH: `${dir}/sluice.kv` });
      assert.equal(second.code, 1);
      assert.match(second.stderr, /Another process is using .*sluice\.kv/);
      assert.doesNotMatch(second.stderr, /Uncaught|at \w+ \(/);
      // The same file through a symlink is the same file.
      await Deno.symlink(`${dir}/sluice.kv`, `${dir}/alias.kv`);
      const third = await startToExit({ PORT: String(freePort()), KV_PATH: `${dir}/alias.kv` });
      assert.equal(third.code, 1);
      assert.match(third.stderr, /Another process is using .*alias\.kv/);
      assert.equal((await fetch(`${first.url}/healthz`).then((r) => r.json())).status, "ok");
      // kill -9 frees the file at once: the next start takes it.
      await first.kill();
      await first.start();
      assert.equal((await fetch(`${first.url}/healthz`).then((r) => r.json())).status, "ok");
    } finally {
      await first.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
);

integration(
  "a second deploy-mode Sluice on a KV file a deploy-mode one uses stops at start-up (a local KV is one process's)",
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "sluice-lock-deploy-" });
    const env = {
      KV_PATH: `${dir}/sluice.kv`,
      SLUICE_MODE: "deploy",
      ADMIN_TOKEN: "a-deploy-admin-token-0123",
      MQTT_PORT: "off",
      WEATHER_API_URL: "off",
    };
    const first = new SluiceProcess(freePort(), env);
    try {
      await first.start();
      const second = await startToExit({ ...env, PORT: String(freePort()) });
      assert.equal(second.code, 1);
      assert.match(second.stderr, /Another process is using .*sluice\.kv/);
      assert.equal((await fetch(`${first.url}/healthz`).then((r) => r.json())).status, "ok");
    } finally {
      await first.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
);

integration(
  "a taken HTTP port stops start-up with one line, and takes back the admin token it made unseen",
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "sluice-port-" });
    const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    try {
      const res = await startToExit({ PORT: String((taken.addr as Deno.NetAddr).port), KV_PATH: `${dir}/sluice.kv` });
      assert.equal(res.code, 1);
      assert.match(res.stderr, /Port \d+ is taken: stop what uses it, or set PORT/);
      assert.doesNotMatch(res.stderr, /Uncaught/);
      // A first start that could not serve printed no token: the next start must make (and print) one.
      const kv = await Deno.openKv(`${dir}/sluice.kv`);
      try {
        assert.equal((await kv.get(keys.admin())).value, null);
      } finally {
        kv.close();
      }
    } finally {
      taken.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
);

integration(
  "MQTT TLS settings that cannot be used stop start-up with one line naming the setting (not a broker without mqtts)",
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "sluice-tls-" });
    const cert = `${root}tests/fixtures/mqtt_test_cert.pem`;
    const key = `${root}tests/fixtures/mqtt_test_key.pem`;
    try {
      await Deno.writeTextFile(`${dir}/garbage.pem`, "not a PEM\n");
      const env = { PORT: "0", MQTT_PORT: "0", KV_PATH: `${dir}/sluice.kv` };
      const missing = await startToExit({ ...env, MQTT_TLS_CERT: `${dir}/missing.pem`, MQTT_TLS_KEY: key });
      assert.equal(missing.code, 1, missing.stderr);
      assert.match(missing.stderr, /MQTT_TLS_CERT: cannot read ".*missing\.pem": No such file/);
      const noKey = await startToExit({ ...env, MQTT_TLS_CERT: cert, MQTT_TLS_KEY: `${dir}/garbage.pem` });
      assert.equal(noKey.code, 1, noKey.stderr);
      assert.match(noKey.stderr, /MQTT_TLS_KEY: ".*garbage\.pem" holds no PEM private key/);
      const swapped = await startToExit({ ...env, MQTT_TLS_CERT: key, MQTT_TLS_KEY: cert });
      assert.equal(swapped.code, 1, swapped.stderr);
      assert.match(swapped.stderr, /MQTT_TLS_CERT: ".*mqtt_test_key\.pem" holds no PEM certificate/);
      // PEM text Deno's TLS cannot use: a certificate that is not the key's, and one that does not decode.
      const ca = `${root}tests/fixtures/mqtt_test_ca.pem`;
      const mismatched = await startToExit({ ...env, MQTT_TLS_CERT: ca, MQTT_TLS_KEY: key });
      assert.equal(mismatched.code, 1, mismatched.stderr);
      assert.match(mismatched.stderr, /MQTT_TLS_CERT, MQTT_TLS_KEY: cannot be used for TLS: .*/);
      await Deno.writeTextFile(
        `${dir}/corrupt.pem`,
        "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n",
      );
      const corrupt = await startToExit({ ...env, MQTT_TLS_CERT: `${dir}/corrupt.pem`, MQTT_TLS_KEY: key });
      assert.equal(corrupt.code, 1, corrupt.stderr);
      assert.match(corrupt.stderr, /MQTT_TLS_CERT, MQTT_TLS_KEY: cannot be used for TLS: .*/);
      for (const res of [missing, noKey, swapped, mismatched, corrupt]) {
        assert.doesNotMatch(res.stderr, /Uncaught|listening/);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

integration("once another writer claims the KV, /healthz answers 503 and writes get 503 lease_lost", async () => {
  const s = await startTestSluice();
  try {
    const token = await s.device("d");
    assert.equal((await post(`${s.url}/channels/blog_queuing/messages`, token, { a: 1 })).status, 202);
    const kv = await Deno.openKv(`${s.kvDir}/sluice.kv`);
    await claimWriterEpoch(kv, "intruder");
    kv.close();
    const health = await fetch(`${s.url}/healthz`);
    assert.equal(health.status, 503, "seen before any write fails");
    assert.equal((await health.json()).checks.kv, "degraded");
    const refused = await post(`${s.url}/channels/blog_queuing/messages`, token, { a: 2 });
    assert.equal(refused.status, 503);
    assert.equal((await refused.json()).error.code, "lease_lost");
  } finally {
    await s.close();
  }
});

integration(
  "once another writer claims the KV, a lane whose commit is refused does not run its scripts again",
  async () => {
    const s = await startTestSluice();
    try {
      const token = await s.device("d");
      const res = await post(`${s.url}/channels/blog_queuing/invoke`, token, {
        method: "test/slow",
        params: { ms: 800 },
      });
      assert.equal(res.status, 202);
      const { taskId } = await res.json();
      const runs = async () =>
        Number(
          /sluice_script_runs_total\{method="test\/slow",outcome="ok"\} (\d+)/.exec(
            await (await fetch(`${s.url}/metrics`)).text(),
          )?.[1] ?? 0,
        );
      const status = async () => (await (await s.admin(`/tasks/${taskId}`)).json()).status;
      await waitFor(async () => (await status()) === "running", 10_000, "the run under way");
      const kv = await Deno.openKv(`${s.kvDir}/sluice.kv`);
      await claimWriterEpoch(kv, "intruder");
      kv.close();
      await waitFor(async () => (await runs()) === 1, 10_000, "the run's end");
      await new Promise((r) => setTimeout(r, 2500)); // a lane that retried would run it again every second
      assert.equal(await runs(), 1);
    } finally {
      await s.close();
    }
  },
);

integration(
  "a KV a newer Sluice wrote (a later KV format) stops start-up with one line, the KV untouched",
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "sluice-format-" });
    try {
      const kv = await Deno.openKv(`${dir}/sluice.kv`);
      await kv.set(keys.kvFormat(), 99);
      kv.close();
      const res = await startToExit({ PORT: String(freePort()), KV_PATH: `${dir}/sluice.kv` });
      assert.equal(res.code, 1, res.stderr);
      assert.match(res.stderr, /This KV was written by a newer Sluice \(KV format 99; this version reads up to \d+\)/);
      assert.doesNotMatch(res.stderr, /Uncaught|listening/);
      const after = await Deno.openKv(`${dir}/sluice.kv`);
      assert.equal((await after.get(keys.kvFormat())).value, 99);
      after.close();
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

integration(
  "a SIGTERM during start-up, once queued work resumed, stops Sluice cleanly (exit 0) instead of killing it",
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "sluice-early-stop-" });
    const weather = fakeWeather();
    weather.mode = "hang"; // the processor's run waits 2 s for the weather: a run is under way at each stop
    const env = { KV_PATH: `${dir}/sluice.kv`, MQTT_PORT: "off", WEATHER_API_URL: weather.url, ADMIN_TOKEN: ADMIN };
    const first = new SluiceProcess(freePort(), env);
    try {
      await first.start();
      const created = await fetch(`${first.url}/admin/devices`, {
        method: "POST",
        headers: { authorization: `Bearer ${ADMIN}` },
        body: JSON.stringify({ id: "early-1" }),
      });
      const { token } = await created.json();
      for (let n = 0; n < 3; n++) {
        const res = await post(`${first.url}/channels/blog_queuing/invoke`, token, {
          method: "blog/queues/processor",
          params: { data: `2${n},1,1:1,2026-11-25T10:00:0${n}Z` },
        });
        assert.equal(res.status, 202);
        await res.body?.cancel();
      }
      await waitFor(() => weather.calls.length > 0, 10_000, "a run under way");
      await first.kill(); // it stopped dead: the next start resumes the queued work

      const second = new Deno.Command(Deno.execPath(), {
        args: ["run", "--allow-all", "--unstable-kv", "--unstable-cron", `${root}main.ts`],
        env: { ...env, HOSTNAME: "127.0.0.1", PORT: String(freePort()), NO_COLOR: "1" },
        stdout: "null",
        stderr: "piped",
      }).spawn();
      let log = "";
      for await (const chunk of second.stderr.pipeThrough(new TextDecoderStream())) {
        if (!log.includes("Resuming queued work") && (log + chunk).includes("Resuming queued work")) {
          second.kill("SIGTERM"); // start-up is not over: the listeners are still to start
        }
        log += chunk;
      }
      const status = await second.status;
      assert.equal(status.code, 0, log);
      assert.match(log, /SIGTERM: stopping/);
      assert.match(log, /Stopped/);
    } finally {
      await first.stop();
      await weather.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
);
