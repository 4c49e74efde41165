import assert from "node:assert/strict";
import { createServer } from "node:net";
import { Aedes } from "aedes";
import { amqpTransport } from "../../simulators/amqp.ts";
import { httpTransport } from "../../simulators/http.ts";
import { mqttTransport } from "../../simulators/mqtt.ts";
import { provisionDevices, runSim, type SimOptions, type Transport } from "../../simulators/runner.ts";
import { exitCode } from "../../simulators/cli.ts";
import { brokerUrl, connectDevice } from "../helpers/mqtt.ts";
import { ADMIN, integration, startTestSluice, type TestSluice, waitFor } from "../helpers/sluice.ts";
import { AMQP_URL, ensureRabbitMq } from "../helpers/amqp.ts";

async function simulate(s: TestSluice, prefix: string, url: string, transport: (url: string) => Transport) {
  const options: SimOptions = {
    devices: 3,
    rate: 30,
    duration: 1.5,
    url,
    adminUrl: s.url,
    adminToken: ADMIN,
    prefix,
    seed: 7,
    inflight: 4,
  };
  const progress: number[] = [];
  const report = await runSim(options, transport(url), { onProgress: (c) => progress.push(c.sent) });
  assert.deepEqual([report.sent, report.acked, report.errors], [45, 45, 0], JSON.stringify(report));
  assert.ok(progress.length >= 1, "progress was reported");
  assert.ok(report.latency.p99 >= report.latency.p50);
  assert.equal(report.unseen, undefined, "Sluice's /metrics counted what was acknowledged");
  for (const id of [`${prefix}-1`, `${prefix}-2`, `${prefix}-3`]) {
    await waitFor(async () => (await (await s.admin(`/pumps/${id}`)).json()).readings === 15, 20_000, id);
  }
}

integration(
  "sim:http, sim:mqtt and sim:amqp create their devices, send the fleet's readings and count acks",
  async () => {
    const s = await startTestSluice({ MQTT_PORT: "0", AMQP_URL });
    try {
      await simulate(s, "simh", `${s.url}/blog/queues/feed`, httpTransport);
      await simulate(s, "simi", `${s.url}/channels/blog_queuing/invoke`, httpTransport);
      await simulate(s, "simm", brokerUrl(s), (url) => mqttTransport(url));
      await simulate(s, "sima", AMQP_URL, (url) => amqpTransport(url));
    } finally {
      await s.close();
    }
  },
);

integration("a simulator asked for more than Sluice acknowledges stops sending when its duration is over", async () => {
  const s = await startTestSluice();
  try {
    const url = `${s.url}/blog/queues/feed`;
    const options: SimOptions = {
      devices: 1,
      rate: 20_000,
      duration: 0.5,
      url,
      adminUrl: s.url,
      adminToken: ADMIN,
      prefix: "simw",
      seed: 7,
      inflight: 1,
    };
    const lines: string[] = [];
    const report = await runSim(options, httpTransport(url), { log: (line) => lines.push(line) });
    assert.equal(report.asked, 10_000);
    assert.ok(report.sent > 0 && report.sent < report.asked, `sent ${report.sent} of ${report.asked}`);
    assert.equal(report.acked, report.sent, "what went out is acknowledged");
    assert.equal(report.errors, 0);
    assert.ok(lines.some((l) => l.includes("the rate was not reached")), lines.join("\n"));
    // A burst of a given size goes out whole, however long it takes.
    const burst = await runSim({ ...options, prefix: "simb", count: 40 }, httpTransport(url));
    assert.deepEqual([burst.asked, burst.sent, burst.acked], [40, 40, 40]);
  } finally {
    await s.close();
  }
});

integration(
  "sim:mqtt says once why a revoked device's connection ended and fails its messages without hanging",
  async () => {
    const s = await startTestSluice({ MQTT_PORT: "0" });
    try {
      const url = brokerUrl(s);
      const lines: string[] = [];
      const options: SimOptions = {
        devices: 2,
        rate: 20,
        duration: 3,
        url,
        adminUrl: s.url,
        adminToken: ADMIN,
        prefix: "simr",
        seed: 7,
        inflight: 4,
      };
      const report = await runSim(options, mqttTransport(url), {
        log: (line) => lines.push(line),
        onStart: () => setTimeout(() => s.admin("/admin/devices/simr-1", { method: "DELETE" }), 1000),
      });
      assert.ok(report.seconds < 4, `${report.seconds} s: PUBACKs that never come are not waited for`);
      assert.equal(report.sent, 60, JSON.stringify(report));
      assert.equal(report.acked + report.errors, report.sent);
      assert.ok(report.acked >= 30 && report.errors >= 10, JSON.stringify(report));
      assert.ok(
        report.errorCauses.every(([cause]) => /^(not connected|connection lost): /.test(cause)),
        lines.join("\n"),
      );
      const reasons = lines.filter((l) => l.startsWith("MQTT "));
      assert.ok(reasons.length >= 1 && reasons.every((l) => l.startsWith("MQTT simr-1: ")), lines.join("\n"));
      assert.equal(new Set(reasons).size, reasons.length, `once per cause: ${lines.join("\n")}`);
      assert.ok(!lines.some((l) => l.includes("in-flight limits")), lines.join("\n"));
    } finally {
      await s.close();
    }
  },
);

integration("sim:mqtt reports the messages Sluice refused for the rate limit though it acknowledged them", async () => {
  const s = await startTestSluice({ MQTT_PORT: "0", RATE_LIMIT: "10/s" });
  try {
    const url = brokerUrl(s);
    const options: SimOptions = {
      devices: 1,
      rate: 60,
      duration: 1,
      url,
      adminUrl: s.url,
      adminToken: ADMIN,
      prefix: "simq",
      seed: 7,
      inflight: 4,
    };
    const report = await runSim(options, mqttTransport(url));
    assert.equal(report.acked, report.sent, "MQTT 3.1.1 acknowledges a refused message all the same");
    const [code, refused] = report.refused?.[0] ?? [];
    assert.equal(code, "rate_limited", JSON.stringify(report.refused));
    assert.ok(refused! >= 20 && refused! < report.sent, `${refused} of ${report.sent}`);
  } finally {
    await s.close();
  }
});

integration("Ctrl-C stops a simulator, which prints its summary and exits 130", async () => {
  const s = await startTestSluice();
  try {
    const root = new URL("../../", import.meta.url).pathname;
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-net", "--allow-env", "--allow-read", "simulators/http.ts"].concat(
        ["--devices", "2", "--rate", "20", "--duration", "30", "--prefix", "simc"],
        ["--url", `${s.url}/blog/queues/feed`, "--admin-url", s.url, "--admin-token", ADMIN],
      ),
      cwd: root,
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const stdout = new Response(child.stdout).text();
    let stderr = "";
    const stderrDone = child.stderr.pipeThrough(new TextDecoderStream()).pipeTo(
      new WritableStream({ write: (chunk) => void (stderr += chunk) }),
    );
    await waitFor(() => stderr.includes(" s  sent "), 20_000, "the first progress line");
    child.kill("SIGINT");
    const { code } = await child.status;
    await stderrDone;
    assert.equal(code, 130, stderr);
    const summary = await stdout;
    assert.match(summary, /^sent \d+ of 600 asked, acked \d+, errors 0 .*\(interrupted\)$/m, summary);
  } finally {
    await s.close();
  }
});

integration("sim:amqp names a vhost RabbitMQ would not open, in one line", async () => {
  await ensureRabbitMq();
  const url = new URL(AMQP_URL);
  url.pathname = "/sluice-sim-test-no-such-vhost";
  await assert.rejects(
    amqpTransport(url.toString()).check!(),
    /^Error: RabbitMQ at amqp:\/\/\S+ would not open vhost "sluice-sim-test-no-such-vhost": it does not exist/,
  );
});

integration(
  "sim:mqtt says what to fix when its --url is Sluice's HTTP port or --token-in-topic meets the embedded broker",
  async () => {
    const s = await startTestSluice({ MQTT_PORT: "0" });
    try {
      const token = await s.device("hint-1");
      // mqtt:// at the HTTP port: mqtt.js reads the HTTP answer as packets.
      const http = mqttTransport(`mqtt://${new URL(s.url).host}`);
      await assert.rejects(
        () => http.connect({ id: "hint-1", token }, () => {}),
        /cannot connect to mqtt:.*: Invalid .*\(that port does not speak MQTT, an HTTP port perhaps: .*ws:\/\/<host>:<PORT>\/mqtt\)$/,
      );
      await http.close();
      // --token-in-topic: a CONNECT without credentials, refused unless MQTT_ANONYMOUS_CONNECT=true.
      const anonymous = mqttTransport(brokerUrl(s), "blog_queuing", true);
      await assert.rejects(
        () => anonymous.connect({ id: "hint-1", token }, () => {}),
        /Not authorized \(--token-in-topic connects without credentials: .*MQTT_ANONYMOUS_CONNECT=true/,
      );
      await anonymous.close();
    } finally {
      await s.close();
    }
  },
);

integration("sim:mqtt and sim:http refuse a --url of the wrong kind before any device is created again", async () => {
  const s = await startTestSluice({ MQTT_PORT: "0" });
  try {
    const httpHost = new URL(s.url).host;
    await assert.rejects(
      mqttTransport(`mqtt://${httpHost}`).check!(),
      /^Error: --url mqtt:\/\/\S+ is an HTTP port, not an MQTT broker: Sluice logs its MQTT port at start-up/,
    );
    await assert.rejects(
      mqttTransport(`localhost:${new URL(brokerUrl(s)).port}`).check!(),
      /^Error: --url localhost:\d+ is not mqtt:\/\/, mqtts:\/\/, ws:\/\/ or wss:\/\/: give the scheme/,
    );
    await assert.rejects(
      httpTransport(`${brokerUrl(s)}/blog/queues/feed`).check!(),
      /^Error: --url mqtt:\/\/\S+ is not http:\/\/ or https:\/\//,
    );
    // http:// at the MQTT port: reachable, but no HTTP server answers there.
    await assert.rejects(
      httpTransport(`${brokerUrl(s).replace(/^mqtt:/, "http:")}/blog/queues/feed`).check!(),
      /^Error: --url http:\/\/\S+ does not answer HTTP: is it Sluice's HTTP port/,
    );
    // The broker itself passes, and no login was tried (nothing to slow the fleet's own down).
    await mqttTransport(brokerUrl(s)).check!();
    await httpTransport(`${s.url}/blog/queues/feed`).check!();
    assert.deepEqual(await (await s.admin("/admin/devices")).json().then((b) => b.devices), []);
  } finally {
    await s.close();
  }
});

integration("a simulator interrupted while it creates its devices stops creating them", async () => {
  const s = await startTestSluice();
  try {
    const stop = new AbortController();
    const ids = Array.from({ length: 120 }, (_, i) => `int-${i}`);
    const creating = provisionDevices(ids, { adminUrl: s.url, adminToken: ADMIN }, () => {}, stop.signal);
    stop.abort(); // Ctrl-C while the first 50 are being created
    await assert.rejects(creating, /^Error: Interrupted while creating devices \(50 of 120 created\)/);
    assert.equal((await (await s.admin("/admin/devices")).json()).devices.length, 50);
  } finally {
    await s.close();
  }
});

/** An MQTT broker that takes any login and acknowledges every publish, as Mosquitto with allow_anonymous: not Sluice. */
async function permissiveBroker(): Promise<{ url: string; close(): Promise<void> }> {
  const aedes = await Aedes.createBroker();
  const server = createServer(aedes.handle);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `mqtt://127.0.0.1:${(server.address() as { port: number }).port}`,
    close: async () => {
      await new Promise<void>((resolve) => aedes.close(() => resolve()));
      // On Deno 2.5 the server's close callback was never called (no connection left): not waited for past 1 s.
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 1000);
        server.close(() => (clearTimeout(timer), resolve()));
      });
    },
  };
}

integration(
  "sim:mqtt refuses a broker that takes any login before any device is revoked, and says when Sluice took nothing",
  async () => {
    // Anonymous connect on: the check's second probe (a made-up login) is what tells Sluice's broker apart.
    const s = await startTestSluice({ MQTT_PORT: "0", MQTT_ANONYMOUS_CONNECT: "true" });
    const other = await permissiveBroker();
    try {
      const token = await s.device("simn-1");
      const options: SimOptions = {
        devices: 1,
        rate: 20,
        duration: 0.5,
        url: other.url,
        adminUrl: s.url,
        adminToken: ADMIN,
        prefix: "simn",
        seed: 7,
        inflight: 4,
      };
      await assert.rejects(
        runSim(options, mqttTransport(other.url)),
        /^Error: --url mqtt:\/\/\S+ accepted a made-up username and password, so it is not Sluice's embedded broker/,
      );
      // simn-1 was not revoked and created again: its token still logs in.
      await (await connectDevice(brokerUrl(s), "simn-1", token)).endAsync();
      await mqttTransport(brokerUrl(s)).check!();
      // --token-in-topic is for an external broker, which is not Sluice: the run goes, but Sluice counted none of it.
      const tokens = { "simn-1": token };
      const report = await runSim(
        { ...options, tokens, tokenInTopic: true },
        mqttTransport(other.url, undefined, true),
      );
      assert.deepEqual([report.sent, report.acked, report.errors], [10, 10, 0], JSON.stringify(report));
      assert.match(report.unseen ?? "", /^Error: 10 message\(s\) were acknowledged, but Sluice took none/);
      assert.equal(exitCode(report), 1);
    } finally {
      await other.close();
      await s.close();
    }
  },
);
