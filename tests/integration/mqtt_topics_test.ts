import assert from "node:assert/strict";
import type { MqttClient } from "mqtt";
import { ADMIN, integration, post, startTestSluice, waitFor } from "../helpers/sluice.ts";
import { brokerUrl, connect, connectDevice, csvReading } from "../helpers/mqtt.ts";

/** The QoS granted for each filter, 128 for a refused one (subscribed one at a time). */
async function granted(client: MqttClient, filters: string[]): Promise<number[]> {
  const out: number[] = [];
  for (const filter of filters) {
    out.push(
      await new Promise<number>((resolve) =>
        client.subscribe(filter, { qos: 1 }, (err, g) => resolve(err ? 128 : g?.[0]?.qos ?? -1))
      ),
    );
  }
  return out;
}

/** Collects what a client receives. */
function inbox(client: MqttClient): { topic: string; text: string }[] {
  const got: { topic: string; text: string }[] = [];
  client.on("message", (topic, payload) => got.push({ topic, text: new TextDecoder().decode(payload) }));
  return got;
}

integration(
  "a subscriber of <channel>/messages gets topic messages from HTTP and MQTT, once each and without tokens",
  async () => {
    const s = await startTestSluice({ MQTT_PORT: "0" });
    const clients: MqttClient[] = [];
    try {
      await s.admin("/admin/channels", { method: "POST", body: JSON.stringify({ name: "alerts" }) });
      const subToken = await s.device("sub-1");
      const pubToken = await s.device("pub-1");
      const subscriber = await connectDevice(brokerUrl(s), "sub-1", subToken);
      const publisher = await connectDevice(brokerUrl(s), "pub-1", pubToken);
      clients.push(subscriber, publisher);
      const got = inbox(subscriber);
      assert.deepEqual(
        await granted(subscriber, ["alerts/messages", "#", "+/alerts/messages", "_pumps/messages", "alerts/+"]),
        [1, 128, 128, 128, 128],
      );

      const res = await post(`${s.url}/channels/alerts/messages`, pubToken, { level: "high", pump: 3 });
      assert.equal(res.status, 202);
      await res.body?.cancel();
      // Published on the very topic the subscriber follows: if aedes forwarded the device's own
      // packet as well, it would arrive twice.
      await publisher.publishAsync("alerts/messages", "pump 3 is hot", { qos: 1 });
      await publisher.publishAsync(`${pubToken}/alerts/messages`, JSON.stringify({ level: "low" }), { qos: 1 });
      await publisher.publishAsync("alerts/messages", "marker", { qos: 0 });
      await waitFor(() => got.some((m) => m.text === "marker"), 10_000, "the marker message");
      assert.deepEqual(got, [
        { topic: "alerts/messages", text: '{"level":"high","pump":3}' },
        { topic: "alerts/messages", text: "pump 3 is hot" },
        { topic: "alerts/messages", text: '{"level":"low"}' },
        { topic: "alerts/messages", text: "marker" },
      ]);
      assert.ok(!JSON.stringify(got).includes(pubToken));
    } finally {
      await Promise.all(clients.map((c) => c.endAsync()));
      await s.close();
    }
  },
);

integration("the admin may follow _pumps over MQTT; an anonymous session only channels open to it", async () => {
  const s = await startTestSluice({ MQTT_PORT: "0", MQTT_ANONYMOUS_CONNECT: "true" });
  const clients: MqttClient[] = [];
  try {
    await s.admin("/admin/channels", {
      method: "POST",
      body: JSON.stringify({ name: "open", anonymousSubscribe: true }),
    });
    const admin = await connect(brokerUrl(s), { username: "admin", password: ADMIN });
    const anonymous = await connect(brokerUrl(s));
    const device = await connectDevice(brokerUrl(s), "pmp-1", await s.device("pmp-1"));
    clients.push(admin, anonymous, device);
    const pumps = inbox(admin);
    assert.deepEqual(await granted(admin, ["_pumps/messages"]), [1]);
    assert.deepEqual(await granted(anonymous, ["open/messages", "blog_queuing/messages"]), [1, 128]);
    await device.publishAsync("blog_queuing/invoke", csvReading(9), { qos: 1 });
    await waitFor(() => pumps.length > 0, 10_000, "a pump change on _pumps");
    assert.equal(pumps[0]!.topic, "_pumps/messages");
    assert.equal(JSON.parse(pumps[0]!.text).id, "pmp-1");
  } finally {
    await Promise.all(clients.map((c) => c.endAsync()));
    await s.close();
  }
});

integration("a refused MQTT subscription is listed at /admin/refused with its reason, never with a token", async () => {
  const s = await startTestSluice({ MQTT_PORT: "0" });
  const clients: MqttClient[] = [];
  try {
    const token = await s.device("sub-2");
    const client = await connectDevice(brokerUrl(s), "sub-2", token);
    clients.push(client);
    assert.deepEqual(await granted(client, ["nowhere/messages", "_pumps/messages", `${token}/alerts/messages`]), [
      128,
      128,
      128,
    ]);
    const refused = await waitFor(
      async () => {
        const list = (await (await s.admin("/admin/refused")).json()).refused as Record<string, unknown>[];
        return list.length === 3 ? list : null;
      },
      5_000,
      "three refused subscriptions",
    );
    const reasons = refused.map((r) => [r.protocol, r.device, r.code, r.reason]).sort();
    assert.deepEqual(reasons, [
      ["mqtt", "sub-2", "forbidden", 'Subscription refused: Channel "_pumps" needs the admin token'],
      ["mqtt", "sub-2", "not_found", 'Subscription refused: Channel "nowhere" does not exist'],
      [
        "mqtt",
        "sub-2",
        "validation_failed",
        "Subscription refused: Only <channel>/messages can be subscribed to (no wildcards, no token in the topic)",
      ],
    ]);
    assert.ok(!JSON.stringify(refused).includes(token), "the token is nowhere in the records");
  } finally {
    for (const c of clients) await c.endAsync(true).catch(() => {});
    await s.close();
  }
});
