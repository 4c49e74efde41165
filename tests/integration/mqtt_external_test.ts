import assert from "node:assert/strict";
import type { MqttClient } from "mqtt";
import { freePort, SluiceProcess } from "../crash/child.ts";
import {
  ADMIN,
  integration,
  post,
  recordingLogger,
  startTestSluice,
  type TestSluice,
  waitFor,
} from "../helpers/sluice.ts";
import { connect, csvReading, mqttAdapter, refusals, waitForReadings } from "../helpers/mqtt.ts";
import { tcpProxy } from "../helpers/tcp_proxy.ts";
import { keys } from "../../store/keys.ts";

/** The machine's Mosquitto (see .ci/run). */
const MOSQUITTO = "mqtt://127.0.0.1:1883";

async function startExternal(kvDir?: string, env: Record<string, string> = {}): Promise<TestSluice> {
  const s = await startTestSluice({ MQTT_URL: MOSQUITTO, ...env }, kvDir);
  await waitFor(() => mqttAdapter(s).ready, 20_000, "Sluice's subscription on Mosquitto");
  return s;
}

/** What /healthz says of MQTT. */
async function mqttHealth(s: TestSluice): Promise<string> {
  return (await (await fetch(`${s.url}/healthz`)).json()).checks.mqtt;
}

/** Ends Sluice's persistent session on Mosquitto so test runs do not pile up sessions there. */
async function dropSession(clientId: string | null): Promise<void> {
  if (!clientId) return;
  const c = await connect(MOSQUITTO, { clientId, clean: true });
  await c.endAsync();
}

integration(
  "external broker: 500 QoS 1 publishes from 5 devices through Mosquitto become readings in order, past the rate limit",
  async () => {
    // The broker holds each device's backlog and Sluice takes it at its own pace: no sender's rate limit applies.
    const s = await startExternal(undefined, { RATE_LIMIT: "10/s" });
    const clients: MqttClient[] = [];
    try {
      const ids = ["x-1", "x-2", "x-3", "x-4", "x-5"];
      const tokens = await Promise.all(ids.map((id) => s.device(id)));
      for (const id of ids) {
        clients.push(
          await connect(MOSQUITTO, { clientId: `${id}-${crypto.randomUUID().slice(0, 6)}` }),
        );
      }
      await Promise.all(clients.map(async (c, d) => {
        for (let n = 0; n < 100; n++) {
          await c.publishAsync(`${tokens[d]}/blog_queuing/invoke`, csvReading(n), { qos: 1 });
        }
      }));
      for (const id of ids) {
        assert.deepEqual(await waitForReadings(s, id, 100), Array.from({ length: 100 }, (_, n) => n), id);
      }
    } finally {
      await Promise.all(clients.map((c) => c.endAsync()));
      const clientId = mqttAdapter(s).clientId;
      await s.close();
      await dropSession(clientId);
    }
  },
);

integration(
  "external broker: a revoked token's messages are refused, topics are re-published without tokens",
  async () => {
    const s = await startExternal();
    const device = await connect(MOSQUITTO, { clientId: `x-rev-${crypto.randomUUID().slice(0, 6)}` });
    const listener = await connect(MOSQUITTO, { clientId: `x-sub-${crypto.randomUUID().slice(0, 6)}` });
    try {
      const token = await s.device("x-rev");
      await s.admin("/admin/channels", { method: "POST", body: JSON.stringify({ name: "x_alerts" }) });
      const got: { topic: string; text: string }[] = [];
      listener.on("message", (topic, payload) => got.push({ topic, text: new TextDecoder().decode(payload) }));
      await listener.subscribeAsync("x_alerts/messages", { qos: 1 });
      // Sluice follows new channels within a few seconds; publish until one comes back.
      await waitFor(
        async () => {
          await device.publishAsync(`${token}/x_alerts/messages`, "pump 9 is hot", { qos: 1 });
          return got.length > 0;
        },
        20_000,
        "a topic message re-published on x_alerts/messages",
      );
      assert.deepEqual(got[0], { topic: "x_alerts/messages", text: "pump 9 is hot" });

      await device.publishAsync(`${token}/blog_queuing/invoke`, csvReading(1), { qos: 1 });
      assert.deepEqual(await waitForReadings(s, "x-rev", 1), [1]);
      const res = await s.admin("/admin/devices/x-rev", { method: "DELETE" });
      await res.body?.cancel();
      const marker = crypto.randomUUID();
      await device.publishAsync(`${token}/blog_queuing/invoke`, csvReading(2, { marker }), { qos: 1 });
      const refused = await waitFor(async () => (await refusals(s)).find((r) => JSON.stringify(r).includes(marker)));
      assert.equal(refused!.code, "unauthorized");
      assert.ok(!JSON.stringify(refused).includes(token), "no token in the refused log");
      assert.equal((await (await s.admin("/pumps/x-rev")).json()).readings, 1, "the refused reading was not processed");
    } finally {
      await device.endAsync();
      await listener.endAsync();
      const clientId = mqttAdapter(s).clientId;
      await s.close();
      await dropSession(clientId);
    }
  },
);

integration(
  "external broker: messages published while Sluice is stopped are processed after it starts again",
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "sluice-test-" });
    let s = await startExternal(dir);
    const clientId = mqttAdapter(s).clientId;
    const device = await connect(MOSQUITTO, { clientId: `x-away-${crypto.randomUUID().slice(0, 6)}` });
    try {
      const token = await s.device("x-away");
      for (let n = 0; n < 20; n++) await device.publishAsync(`${token}/blog_queuing/invoke`, csvReading(n), { qos: 1 });
      await s.close();
      // Mosquitto keeps these for Sluice's persistent session while it is away.
      for (let n = 20; n < 60; n++) {
        await device.publishAsync(`${token}/blog_queuing/invoke`, csvReading(n), {
          qos: 1,
        });
      }
      s = await startExternal(dir);
      assert.equal(mqttAdapter(s).clientId, clientId, "the same session is resumed");
      for (let n = 60; n < 80; n++) {
        await device.publishAsync(`${token}/blog_queuing/invoke`, csvReading(n), {
          qos: 1,
        });
      }
      const numbers = await waitForReadings(s, "x-away", 80);
      assert.deepEqual(numbers, Array.from({ length: 80 }, (_, n) => n));
    } finally {
      await device.endAsync();
      await s.close();
      await dropSession(clientId);
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
);

integration("external broker: Sluice reconnects by itself after losing its connection", async () => {
  const s = await startExternal();
  const clientId = mqttAdapter(s).clientId!;
  const device = await connect(MOSQUITTO, { clientId: `x-back-${crypto.randomUUID().slice(0, 6)}` });
  try {
    const token = await s.device("x-back");
    // Another connection with Sluice's client id takes the session over: Mosquitto drops Sluice's.
    const intruder = await connect(MOSQUITTO, { clientId, clean: false });
    await intruder.endAsync();
    for (let n = 0; n < 10; n++) await device.publishAsync(`${token}/blog_queuing/invoke`, csvReading(n), { qos: 1 });
    assert.deepEqual(await waitForReadings(s, "x-back", 10), Array.from({ length: 10 }, (_, n) => n));
  } finally {
    await device.endAsync();
    await s.close();
    await dropSession(clientId);
  }
});

integration(
  "external broker: topic messages published while the broker is unreachable are re-published once it is back, in order",
  async () => {
    const proxy = tcpProxy({ hostname: "127.0.0.1", port: 1883 });
    const s = await startTestSluice({ MQTT_URL: `mqtt://127.0.0.1:${proxy.port}` });
    const listener = await connect(MOSQUITTO, { clientId: `x-out-${crypto.randomUUID().slice(0, 6)}` });
    try {
      await waitFor(() => mqttAdapter(s).ready, 20_000, "Sluice's subscription through the proxy");
      const token = await s.device("x-outage");
      await s.admin("/admin/channels", { method: "POST", body: JSON.stringify({ name: "x_outage" }) });
      const got: number[] = [];
      listener.on("message", (topic, payload) => {
        if (topic === "x_outage/messages") got.push(JSON.parse(new TextDecoder().decode(payload)).n);
      });
      await listener.subscribeAsync("x_outage/messages", { qos: 1 });
      const publish = async (n: number) => {
        const res = await post(`${s.url}/channels/x_outage/messages`, token, { n });
        assert.equal(res.status, 202);
        await res.body?.cancel();
      };
      // Until the channel is followed: a warm-up message (-1) until one comes back.
      await waitFor(async () => (await publish(-1), got.includes(-1)), 20_000, "a first message re-published");
      await publish(0);

      proxy.cut();
      await waitFor(async () => (await mqttHealth(s)) === "degraded", 10_000, "MQTT degraded");
      for (let n = 1; n <= 20; n++) await publish(n);
      proxy.restore();
      await waitFor(() => mqttAdapter(s).ready, 20_000, "Sluice subscribed again");
      for (let n = 21; n <= 25; n++) await publish(n);
      const all = Array.from({ length: 26 }, (_, n) => n);
      await waitFor(() => all.every((n) => got.includes(n)), 20_000, "every message re-published");
      assert.deepEqual([...new Set(got.filter((n) => n >= 0))], all, "in order");
    } finally {
      await listener.endAsync();
      const clientId = mqttAdapter(s).clientId;
      await s.close();
      proxy.close();
      await dropSession(clientId);
    }
  },
);

integration(
  "external broker unreachable: the reason is logged once while it keeps failing, without the password",
  async () => {
    const log = recordingLogger();
    const s = await startTestSluice({ MQTT_URL: "mqtt://sluice:s3cret@127.0.0.1:1" }, undefined, { log });
    try {
      await waitFor(() => log.lines.some((l) => l.includes("cannot use")), 5_000, "a log line");
      await new Promise((r) => setTimeout(r, 3_000)); // more attempts: after 0.2, 0.4, 0.8 and 1.6 s
      const failures = log.lines.filter((l) => l.includes("cannot use"));
      assert.equal(failures.length, 1, failures.join("\n"));
      assert.match(failures[0]!, /^warn MQTT: cannot use mqtt:\/\/127\.0\.0\.1:1: .+ \(retrying\)$/);
      assert.ok(!log.lines.some((l) => l.includes("s3cret")), "no password in the log");
      assert.equal(await mqttHealth(s), "degraded");
    } finally {
      await s.close();
    }
  },
);

integration(
  "external broker: while another instance holds the subscriber lease, mqtt is degraded and the log says why",
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "sluice-test-" });
    const kv = await Deno.openKv(`${dir}/sluice.kv`);
    // As a Sluice stopped without giving the lease back leaves it, for its last few seconds.
    await kv.set(["mqtt", "external_subscriber"], { holder: "another", until: Date.now() + 4000 }, { expireIn: 4000 });
    kv.close();
    const log = recordingLogger();
    const s = await startTestSluice({ MQTT_URL: MOSQUITTO }, dir, { log });
    try {
      await waitFor(() => log.lines.some((l) => l.includes("lease")), 5_000, "a line about the lease");
      assert.equal(await mqttHealth(s), "degraded");
      assert.ok(!mqttAdapter(s).ready);
      await waitFor(() => mqttAdapter(s).ready, 20_000, "the subscription once the lease expired");
      assert.equal(await mqttHealth(s), "ok");
    } finally {
      const clientId = mqttAdapter(s).clientId;
      await s.close();
      await dropSession(clientId);
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
);

/** A broker that accepts every connection and refuses every subscription (SUBACK 0x80 per filter). */
function refusingBroker(): { url: string; close(): void } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  const serve = async (conn: Deno.Conn) => {
    let buf = new Uint8Array(0);
    for await (const chunk of conn.readable) {
      buf = new Uint8Array([...buf, ...chunk]);
      for (;;) {
        // Fixed header: type, then the remaining length (a varint); wait for the whole packet.
        let length = 0, at = 1, factor = 1, complete = false;
        while (at < buf.length) {
          const b = buf[at++]!;
          length += (b & 0x7f) * factor;
          factor *= 128;
          if (!(b & 0x80)) {
            complete = true;
            break;
          }
        }
        if (!complete || buf.length < at + length) break;
        const type = buf[0]! >> 4, body = buf.subarray(at, at + length);
        buf = buf.slice(at + length);
        let reply: number[] = [];
        if (type === 1) reply = [0x20, 2, 0, 0]; // CONNACK accepted
        if (type === 12) reply = [0xd0, 0]; // PINGRESP
        if (type === 8) { // SUBSCRIBE: one refusal per filter
          let filters = 0;
          for (let i = 2; i < body.length; i += 2 + ((body[i]! << 8) | body[i + 1]!) + 1) filters++;
          reply = [0x90, 2 + filters, body[0]!, body[1]!, ...Array(filters).fill(0x80)];
        }
        if (reply.length > 0) await conn.write(new Uint8Array(reply));
      }
    }
  };
  (async () => {
    for await (const conn of listener) {
      conns.add(conn);
      serve(conn).catch(() => {}).finally(() => conns.delete(conn));
    }
  })().catch(() => {});
  return {
    url: `mqtt://127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
    close() {
      listener.close();
      for (const c of conns) c.close();
    },
  };
}

integration(
  "external broker: a refused subscription is logged with its reason, never as subscribed, and mqtt stays degraded",
  async () => {
    const broker = refusingBroker();
    const log = recordingLogger();
    const s = await startTestSluice({ MQTT_URL: broker.url }, undefined, { log });
    try {
      const line = await waitFor(() => log.lines.find((l) => /^warn .*subscri/.test(l)), 10_000, "a warning");
      assert.match(line, /Subscribe error/);
      await new Promise((r) => setTimeout(r, 1_500)); // it retries meanwhile
      assert.ok(!log.lines.some((l) => l.includes("subscribed on")), log.lines.join("\n"));
      assert.equal(log.lines.filter((l) => /^warn .*subscri/.test(l)).length, 1, log.lines.join("\n"));
      assert.equal(await mqttHealth(s), "degraded");
    } finally {
      await s.close();
      broker.close();
    }
  },
);

integration("external broker gone silent (TCP open): SIGTERM still exits 0 within 5 s", async () => {
  const proxy = tcpProxy({ hostname: "127.0.0.1", port: 1883 });
  const dir = await Deno.makeTempDir({ prefix: "sluice-mqtt-stop-" });
  const sluice = new SluiceProcess(freePort(), {
    KV_PATH: `${dir}/sluice.kv`,
    ADMIN_TOKEN: ADMIN,
    MQTT_URL: `mqtt://127.0.0.1:${proxy.port}`,
    WEATHER_API_URL: "off",
  });
  try {
    await sluice.start(); // healthz ok: subscribed through the proxy
    const admin = (path: string, body: unknown) =>
      post(`${sluice.url}${path}`, ADMIN, body).then((r) => r.body?.cancel());
    await admin("/admin/channels", { name: "x_silent" });
    await new Promise((r) => setTimeout(r, 2_500)); // the re-publisher finds the new channel
    proxy.stall();
    // Re-publishes the broker will never acknowledge, in flight when the stop comes.
    for (let n = 0; n < 5; n++) await admin("/channels/x_silent/messages", { n });
    const started = Date.now();
    const code = await sluice.stop();
    const ms = Date.now() - started;
    assert.equal(code, 0, `exit code (log:\n${sluice.log})`);
    assert.ok(ms < 5000, `stopped in ${ms} ms`);
  } finally {
    await sluice.kill();
    proxy.close();
    await dropSession(/client id (sluice-[0-9a-f]+)/.exec(sluice.log)?.[1] ?? null);
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});

integration(
  "external broker: topic messages published while the broker was away go out after a restart, each once and in order",
  async () => {
    const away = await startTestSluice({ MQTT_URL: `mqtt://127.0.0.1:${freePort()}` });
    let again: TestSluice | null = null;
    const listener = await connect(MOSQUITTO, { clientId: `x-away-${crypto.randomUUID().slice(0, 6)}` });
    try {
      // Where re-publishing starts is kept before the broker was ever reached.
      await waitFor(
        async () => (await away.server.sluice.kv.get(keys.republished("mqtt", "blog_queuing"))).value !== null,
        10_000,
        "the start of re-publishing kept",
      );
      const marker = crypto.randomUUID();
      const token = await away.device("x-away");
      for (const n of [1, 2, 3]) {
        const res = await post(`${away.url}/channels/blog_queuing/messages`, token, { marker, n });
        assert.equal(res.status, 202);
        await res.body?.cancel();
      }
      await away.stop();

      const got: number[] = [];
      listener.on("message", (_topic, payload) => {
        const m = JSON.parse(new TextDecoder().decode(payload));
        if (m.marker === marker) got.push(m.n);
      });
      await listener.subscribeAsync("blog_queuing/messages", { qos: 1 });
      again = await startTestSluice({ MQTT_URL: MOSQUITTO }, away.kvDir);
      await waitFor(() => mqttAdapter(again!).ready, 20_000, "Sluice's subscription on Mosquitto");
      const res = await post(`${again.url}/channels/blog_queuing/messages`, token, { marker, n: 4 });
      assert.equal(res.status, 202);
      await res.body?.cancel();
      await waitFor(() => got.length >= 4, 15_000, "4 messages on blog_queuing/messages");
      await new Promise((r) => setTimeout(r, 300)); // a repeat would show by now
      assert.deepEqual(got, [1, 2, 3, 4]);
    } finally {
      await listener.endAsync();
      const clientId = again ? mqttAdapter(again).clientId : null;
      await again?.close();
      await away.close();
      await dropSession(clientId);
    }
  },
);
