import assert from "node:assert/strict";
import { integration, startTestSluice } from "../helpers/sluice.ts";
import { brokerUrl, connectDevice, csvReading, mqttAdapter, waitForReadings } from "../helpers/mqtt.ts";

integration("embedded broker: 500 QoS 1 publishes from 5 devices are acked and become readings in order", async () => {
  const s = await startTestSluice({ MQTT_PORT: "0" });
  const clients = [];
  try {
    const ids = ["m-1", "m-2", "m-3", "m-4", "m-5"];
    const tokens = new Map<string, string>();
    for (const id of ids) {
      tokens.set(id, await s.device(id));
      clients.push(await connectDevice(brokerUrl(s), id, tokens.get(id)!));
    }
    let acked = 0;
    await Promise.all(clients.map(async (c, d) => {
      const token = tokens.get(ids[d]!)!;
      // Each device waits for each PUBACK: the contract keeps the order of acknowledged messages.
      for (let n = 0; n < 100; n++) {
        // Both routes of a session with credentials: with and without the device's own token.
        const topic = n % 2 === 0 ? "blog_queuing/invoke" : `${token}/blog_queuing/invoke`;
        await c.publishAsync(topic, csvReading(n), { qos: 1 });
        acked++;
      }
    }));
    assert.equal(acked, 500);
    for (const id of ids) {
      const numbers = await waitForReadings(s, id, 100);
      assert.deepEqual(numbers, Array.from({ length: 100 }, (_, n) => n), `${id}'s readings in publish order`);
    }
    assert.equal(mqttAdapter(s).stats.accepted, 500);
  } finally {
    await Promise.all(clients.map((c) => c.endAsync()));
    await s.close();
  }
});

integration("MQTT over WebSocket at /mqtt works with mqtt.js ws://", async () => {
  const s = await startTestSluice({ MQTT_PORT: "0" });
  const token = await s.device("ws-1");
  const client = await connectDevice(`${s.url.replace("http://", "ws://")}/mqtt`, "ws-1", token);
  try {
    for (let n = 0; n < 20; n++) await client.publishAsync("blog_queuing/invoke", csvReading(n), { qos: 1 });
    assert.deepEqual(await waitForReadings(s, "ws-1", 20), Array.from({ length: 20 }, (_, n) => n));
    const plain = await fetch(`${s.url}/mqtt`);
    assert.equal(plain.status, 400, "a plain GET /mqtt is told to use a WebSocket");
    await plain.body?.cancel();
    // An upgrade without the key the handshake needs is the client's fault too, not Sluice's (it was a 500).
    const keyless = await fetch(`${s.url}/mqtt`, { headers: { upgrade: "websocket", connection: "Upgrade" } });
    assert.equal(keyless.status, 400);
    assert.match((await keyless.json()).error.message, /Not a valid WebSocket upgrade/);
    const doc = await (await fetch(`${s.url}/openapi.json`)).json();
    assert.match(doc.paths["/mqtt"].get.description, /Publish on <channel>\/invoke .* or <channel>\/messages/);
  } finally {
    await client.endAsync();
    await s.close();
  }
});

integration("mqtts: the embedded broker speaks TLS with MQTT_TLS_CERT and MQTT_TLS_KEY", async () => {
  const cert = new URL("../fixtures/mqtt_test_cert.pem", import.meta.url).pathname;
  const key = new URL("../fixtures/mqtt_test_key.pem", import.meta.url).pathname;
  const s = await startTestSluice({ MQTT_PORT: "0", MQTT_TLS_CERT: cert, MQTT_TLS_KEY: key });
  const token = await s.device("tls-1");
  const port = mqttAdapter(s).port;
  // A leaf certificate for localhost/127.0.0.1 signed by a test CA (a self-signed CA as server
  // certificate is refused by rustls: CaUsedAsEndEntity).
  const ca = await Deno.readTextFile(new URL("../fixtures/mqtt_test_ca.pem", import.meta.url));
  const client = await connectDevice(`mqtts://127.0.0.1:${port}`, "tls-1", token, { ca });
  try {
    await client.publishAsync("blog_queuing/invoke", csvReading(7), { qos: 1 });
    assert.deepEqual(await waitForReadings(s, "tls-1", 1), [7]);
  } finally {
    await client.endAsync();
    await s.close();
  }
});

integration("a taken MQTT port leaves the rest of Sluice running, with /healthz saying degraded", async () => {
  const taken = Deno.listen({ port: 0, hostname: "0.0.0.0" });
  const s = await startTestSluice({ MQTT_PORT: String(taken.addr.port) });
  try {
    assert.equal(mqttAdapter(s).port, null);
    const health = await (await fetch(`${s.url}/healthz`)).json();
    assert.deepEqual([health.status, health.checks.mqtt], ["degraded", "degraded"]);
    const token = await s.device("still-1");
    const client = await connectDevice(`${s.url.replace("http://", "ws://")}/mqtt`, "still-1", token);
    await client.publishAsync("blog_queuing/invoke", csvReading(1), { qos: 1 });
    await client.endAsync();
    assert.deepEqual(await waitForReadings(s, "still-1", 1), [1]);
  } finally {
    taken.close();
    await s.close();
  }
});
