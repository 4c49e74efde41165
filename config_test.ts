import assert from "node:assert/strict";
import { ConfigSchema, kvLocation, loadConfig, loadKvLocation, SETTINGS_HELP } from "./config.ts";

/** The one error loading `env` gives ("" when it loads). */
function problems(env: Record<string, string>): string {
  try {
    loadConfig(env);
    return "";
  } catch (err) {
    return (err as Error).message;
  }
}

Deno.test("settings have the documented defaults", () => {
  const c = loadConfig({});
  assert.equal(c.PORT, 8000);
  assert.equal(c.KV_PATH, "data/sluice.kv");
  assert.equal(c.MQTT_PORT, 1883);
  assert.equal(c.MAX_BODY_BYTES, 49152);
  assert.equal(c.DEDUP_WINDOW, 86_400_000);
  assert.equal(c.RATE_LIMIT, 200);
  assert.equal(c.WEATHER_API_URL, "https://api.open-meteo.com/v1/forecast");
});

Deno.test("settings accept off, durations and rates", () => {
  const c = loadConfig({ MQTT_PORT: "off", RATE_LIMIT: "off", DEDUP_WINDOW: "90s", WEATHER_API_URL: "off" });
  assert.equal(c.MQTT_PORT, null);
  assert.equal(c.RATE_LIMIT, null);
  assert.equal(c.DEDUP_WINDOW, 90_000);
  assert.equal(c.WEATHER_API_URL, null);
  assert.equal(loadConfig({ RATE_LIMIT: "60/m" }).RATE_LIMIT, 1);
});

Deno.test("bad settings are all reported in one error", () => {
  assert.throws(() => loadConfig({ PORT: "eighty", RATE_LIMIT: "fast" }), /PORT[\s\S]*RATE_LIMIT/);
});

Deno.test("each bad setting is said in words: what was expected, and what was given", () => {
  assert.match(problems({ MQTT_PORT: "abc" }), /MQTT_PORT: expected a port from 0 to 65535 .* or "off", got "abc"/);
  assert.match(
    problems({ SCRIPT_TIMEOUT_MS: "5s" }),
    /SCRIPT_TIMEOUT_MS: expected a whole number from 10 to 600000, got "5s"/,
  );
  assert.match(problems({ PORT: "8080", MQTT_PORT: "8080" }), /MQTT_PORT: 8080 is PORT too: give the MQTT broker/);
  assert.equal(loadConfig({ PORT: "0", MQTT_PORT: "0" }).MQTT_PORT, 0, "two free ports, chosen by the system");
  assert.match(problems({ PORT: "70000" }), /PORT: expected a whole number from 0 to 65535, got "70000"/);
  assert.match(problems({ RATE_LIMIT: "0/s" }), /RATE_LIMIT: expected a rate above 0/);
  // 0 kept nothing: topic messages expired as soon as written, message ids were not stored.
  assert.match(problems({ TOPIC_RETENTION: "0" }), /TOPIC_RETENTION: expected a duration above 0 .*, got "0"/);
  assert.match(problems({ DEDUP_WINDOW: "0s" }), /DEDUP_WINDOW: expected a duration above 0 .*, got "0s"/);
  // KV refuses an expiry that far out: the inbox could not move such a task, and the file would not open again.
  for (const name of ["DEDUP_WINDOW", "TOPIC_RETENTION", "TASK_RETENTION", "PUMPS_RETENTION", "READING_RETENTION"]) {
    assert.match(problems({ [name]: "100000000d" }), new RegExp(`${name}: .*at most 36500d \\(100 years\\)`));
  }
  assert.equal(loadConfig({ TASK_RETENTION: "36500d" }).TASK_RETENTION, 36_500 * 86_400_000);
  assert.equal(loadConfig({ DEDUP_WINDOW: "0.5s" }).DEDUP_WINDOW, 500);
  // Tasks that expire before they run are passed over: a retention shorter than an outage drops them.
  assert.match(problems({ TASK_RETENTION: "30m" }), /TASK_RETENTION: must be at least 1h/);
  assert.equal(loadConfig({ TASK_RETENTION: "30d" }).TASK_RETENTION, 30 * 86_400_000);
  assert.equal(loadConfig({}).TASK_RETENTION, undefined, "tasks are kept for good unless it is set");
  assert.match(problems({ READING_RETENTION: "59m" }), /READING_RETENTION: must be at least 1h/);
  assert.equal(loadConfig({ READING_RETENTION: "90d" }).READING_RETENTION, 90 * 86_400_000);
  assert.equal(loadConfig({}).READING_RETENTION, undefined, "pump histories are kept whole unless it is set");
  assert.match(
    problems({ TRUSTED_PROXIES: "10.0.0.5, proxy.local" }),
    /TRUSTED_PROXIES: expected IP addresses .*"proxy\.local"/,
  );
  assert.deepEqual(loadConfig({ TRUSTED_PROXIES: "10.0.0.5, ::1" }).TRUSTED_PROXIES, ["10.0.0.5", "::1"]);
  // Taken before: every reading then went without its outside temperature, with a warning per place a minute.
  for (const url of ["ftp://weather.example.com/v1", "htp://x", "forecast"]) {
    assert.match(
      problems({ WEATHER_API_URL: url }),
      /WEATHER_API_URL: must be an http:\/\/ or https:\/\/ URL, or "off"/,
    );
  }
  assert.equal(loadConfig({ WEATHER_API_URL: "http://127.0.0.1:9/v1" }).WEATHER_API_URL, "http://127.0.0.1:9/v1");
  assert.match(problems({ MQTT_TLS_CERT: "cert.pem" }), /mqtts needs both/);
  assert.match(problems({ MQTT_TLS_CERT: "c.pem", MQTT_TLS_KEY: "k.pem", MQTT_PORT: "off" }), /MQTT_PORT is off/);
  assert.equal(loadConfig({ MQTT_PORT: "OFF" }).MQTT_PORT, null);
  // Words in any case, as MQTT_PORT takes them.
  assert.equal(loadConfig({ RATE_LIMIT: "OFF" }).RATE_LIMIT, null);
  assert.equal(loadConfig({ MQTT_ANONYMOUS_CONNECT: "True" }).MQTT_ANONYMOUS_CONNECT, true);
  assert.equal(loadConfig({ MQTT_ANONYMOUS_CONNECT: " NO " }).MQTT_ANONYMOUS_CONNECT, false);
  assert.match(problems({ MQTT_ANONYMOUS_CONNECT: "maybe" }), /MQTT_ANONYMOUS_CONNECT: /);
  assert.equal(loadConfig({ MQTT_PORT: " 0 " }).MQTT_PORT, 0);
  assert.equal(loadConfig({ SCRIPT_WORKERS: "0" }).SCRIPT_WORKERS, 0);
});

Deno.test("AMQP_URL must be amqp:// or amqps://, MQTT_URL mqtt://, mqtts://, ws:// or wss://", () => {
  for (const url of ["amqp://guest:guest@127.0.0.1:5672", "amqps://rabbit.example.com/iot", "amqp://h?heartbeat=5"]) {
    assert.equal(loadConfig({ AMQP_URL: url }).AMQP_URL, url);
  }
  for (const url of ["mqtt://127.0.0.1:1883", "mqtts://u:p@broker.example.com", "ws://h/mqtt", "wss://h:8443/mqtt"]) {
    assert.equal(loadConfig({ MQTT_URL: url }).MQTT_URL, url);
  }
  for (const url of ["localhost:5672", "http://127.0.0.1:5672", "mqtt://127.0.0.1", "amqp:", "rabbit"]) {
    assert.throws(
      () => loadConfig({ AMQP_URL: url }),
      /^Error: Invalid settings:\n {2}AMQP_URL: .*amqp:\/\/ or amqps:\/\//,
      url,
    );
  }
  for (const url of ["localhost:1883", "tcp://127.0.0.1:1883", "amqp://127.0.0.1", "mqtt://"]) {
    assert.throws(() => loadConfig({ MQTT_URL: url }), /MQTT_URL: .*mqtt:\/\/, mqtts:\/\/, ws:\/\/ or wss:\/\//, url);
  }
  // Both wrong: one line each.
  assert.throws(
    () => loadConfig({ AMQP_URL: "localhost:5672", MQTT_URL: "localhost:1883" }),
    (err: Error) =>
      err.message.split("\n").length === 3 && /AMQP_URL/.test(err.message) && /MQTT_URL/.test(err.message),
  );
});

Deno.test("a refused broker URL's password never shows in the error", () => {
  for (const url of ["http://sluice:s3cret@127.0.0.1:5672", "sluice:s3cret@127.0.0.1:5672", "amqp://sluice:s3cret@"]) {
    for (const name of ["AMQP_URL", "MQTT_URL"]) {
      assert.throws(() => loadConfig({ [name]: url }), (err: Error) => !err.message.includes("s3cret"), url);
    }
  }
});

Deno.test("on Deploy the admin token must be set: a generated one would be printed to the platform's logs", () => {
  for (const env of [{ SLUICE_MODE: "deploy" }, { DENO_DEPLOY: "true" }]) {
    assert.throws(() => loadConfig(env), /ADMIN_TOKEN: required on Deno Deploy/);
    assert.equal(
      loadConfig({ ...env, ADMIN_TOKEN: "a-long-enough-admin-token" }).ADMIN_TOKEN,
      "a-long-enough-admin-token",
    );
  }
  assert.equal(loadConfig({ SLUICE_MODE: "local" }).ADMIN_TOKEN, undefined);
});

Deno.test("an admin or metrics token a Bearer header cannot carry, or short enough to guess, stops start-up", () => {
  for (const name of ["ADMIN_TOKEN", "METRICS_TOKEN"] as const) {
    assert.throws(
      () => loadConfig({ [name]: "correct horse battery staple" }),
      new RegExp(`${name}: .*without spaces`),
    );
    assert.throws(() => loadConfig({ [name]: "tab\tinside-a-long-token" }), new RegExp(`${name}: .*without spaces`));
    assert.throws(() => loadConfig({ [name]: "short" }), new RegExp(`${name}: must be at least 16`));
    assert.equal(loadConfig({ [name]: "a-long-enough_token.~!" })[name], "a-long-enough_token.~!");
  }
});

Deno.test("start --help names every setting, with the defaults the settings really have", () => {
  const named = SETTINGS_HELP.map(([name]) => name);
  const settable = Object.keys(ConfigSchema.shape).filter((k) => k !== "DENO_DEPLOY");
  assert.deepEqual([...named].sort(), settable.sort());
  const defaults = loadConfig({}) as Record<string, unknown>;
  for (const [name, fallback] of SETTINGS_HELP) {
    if (["-", "generated once", "Open-Meteo"].includes(fallback)) continue;
    assert.deepEqual((loadConfig({ [name]: fallback }) as Record<string, unknown>)[name], defaults[name], name);
  }
});

Deno.test("deno task start answers --help and refuses an unknown argument without starting", async () => {
  const run = (arg: string) =>
    new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--unstable-kv", "--unstable-cron", new URL("./main.ts", import.meta.url).pathname, arg],
      env: { KV_PATH: ":memory:", PORT: "0", MQTT_PORT: "off" },
      stdout: "piped",
      stderr: "piped",
    }).output();
  const help = await run("--help");
  assert.equal(help.code, 0);
  assert.match(new TextDecoder().decode(help.stdout), /MQTT_PORT\s+1883/);
  const bad = await run("--port=9");
  assert.equal(bad.code, 2);
  assert.match(new TextDecoder().decode(bad.stderr), /Unknown argument "--port=9"/);
});

Deno.test("the KV's location: KV_PATH, :memory:, or the managed KV on Deno Deploy whatever KV_PATH says", () => {
  assert.deepEqual(loadKvLocation({}), { kind: "file", path: "data/sluice.kv" });
  assert.deepEqual(loadKvLocation({ KV_PATH: "/var/sluice.kv" }), { kind: "file", path: "/var/sluice.kv" });
  assert.deepEqual(loadKvLocation({ KV_PATH: ":memory:" }), { kind: "memory" });
  assert.deepEqual(loadKvLocation({ KV_PATH: "/var/sluice.kv", DENO_DEPLOY: "true" }), { kind: "managed" });
  // Forced deploy behaviour elsewhere keeps the file (the multi-instance tests share one).
  assert.deepEqual(loadKvLocation({ SLUICE_MODE: "deploy" }), { kind: "file", path: "data/sluice.kv" });
  // A setting the location does not depend on does not stop a tool that only needs the location.
  assert.deepEqual(loadKvLocation({ PORT: "eighty" }), { kind: "file", path: "data/sluice.kv" });
  assert.deepEqual(kvLocation(loadConfig({ KV_PATH: "a.kv" })), { kind: "file", path: "a.kv" });
  assert.throws(() => loadKvLocation({ DENO_DEPLOY: "maybe" }), /DENO_DEPLOY/);
});

Deno.test("TRUSTED_PROXIES takes only addresses that can match a peer: IPv4 in range, IPv6 as Deno writes it", () => {
  assert.match(problems({ TRUSTED_PROXIES: "999.1.1.1" }), /TRUSTED_PROXIES: expected IP addresses .*"999\.1\.1\.1"/);
  assert.match(problems({ TRUSTED_PROXIES: ":" }), /TRUSTED_PROXIES: expected IP addresses/);
  assert.deepEqual(loadConfig({ TRUSTED_PROXIES: "FE80:0:0::1, 2001:DB8::A" }).TRUSTED_PROXIES, [
    "fe80::1",
    "2001:db8::a",
  ]);
  // Deno gives an IPv4 peer on a dual-stack listener as ::ffff:a.b.c.d; the URL parser wrote it ::ffff:7f00:1.
  assert.deepEqual(loadConfig({ TRUSTED_PROXIES: "::ffff:127.0.0.1, ::FFFF:7f00:2" }).TRUSTED_PROXIES, [
    "127.0.0.1",
    "127.0.0.2",
  ]);
});
