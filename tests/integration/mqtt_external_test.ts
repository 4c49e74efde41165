import assert from "node:assert/strict";
import type { MqttClient } from "mqtt";
import { integration, startTestSluice, type TestSluice, waitFor } from "../helpers/sluice.ts";
import { connect, csvReading, mqttAdapter, refusals, waitForReadings } from "../helpers/mqtt.ts";

/** The machine's Mosquitto (see .ci/run). */
const MOSQUITTO = "mqtt://127.0.0.1:1883";

async function startExternal(kvDir?: string): Promise<TestSluice> {
  const s = await startTestSluice({ MQTT_URL: MOSQUITTO }, kvDir);
  await waitFor(() => mqttAdapter(s).ready, 20_000, "Sluice's subscription on Mosquitto");
  return s;
}

/** Ends Sluice's persistent session on Mosquitto so test runs do not pile up sessions there. */
async function dropSession(clientId: string | null): Promise<void> {
  if (!clientId) return;
  const c = await connect(MOSQUITTO, { clientId, clean: true });
  await c.endAsync();
}

integration(
  "external broker: 500 QoS 1 publishes from 5 devices through Mosquitto become readings in order",
  async () => {
    const s = await startExternal();
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
