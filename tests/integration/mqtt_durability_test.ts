import assert from "node:assert/strict";
import type { Packet } from "mqtt";
import type { InboxPack } from "../../store/inbox.ts";
import { keys } from "../../store/keys.ts";
import { gateIngest, integration, startTestSluice, waitFor } from "../helpers/sluice.ts";
import { brokerUrl, connectDevice, csvReading, mqttAdapter, readingNumbers, waitForReadings } from "../helpers/mqtt.ts";

/** A free TCP port (so a restarted Sluice can listen on the same one). */
function freePort(): number {
  const l = Deno.listen({ port: 0, hostname: "127.0.0.1" });
  const port = l.addr.port;
  l.close();
  return port;
}

integration("the PUBACK (QoS 1) and PUBREC (QoS 2) go out only after the commit", async () => {
  const s = await startTestSluice({ MQTT_PORT: "0" });
  const client = await connectDevice(`mqtt://127.0.0.1:${mqttAdapter(s).port}`, "ack-1", await s.device("ack-1"));
  try {
    const { kv } = s.server.sluice;
    const gate = gateIngest(s); // every commit held until the test opens it
    for (const [qos, ack] of [[1, "puback"], [2, "pubrec"]] as const) {
      const id = `ack-${qos}`;
      const acked = Promise.withResolvers<boolean>();
      const onPacket = (packet: Packet) => {
        if (packet.cmd !== ack) return;
        // At the moment the acknowledgement arrives, the message is in KV (its id's key, or in the inbox with it).
        inKv(kv, keys.dedup("ack-1", id)).then(acked.resolve, acked.reject);
      };
      client.on("packetreceive", onPacket);
      const before = gate.entered;
      const published = client.publishAsync("blog_queuing/invoke", csvReading(qos, { id }), { qos });
      await waitFor(() => gate.entered > before, 10_000, "the publish to reach ingest");
      const early = await Promise.race([acked.promise, new Promise((r) => setTimeout(() => r("pending"), 300))]);
      assert.equal(early, "pending", `no ${ack} while the commit is held`);
      gate.open();
      assert.equal(await acked.promise, true, `committed when the ${ack} arrived`);
      await published;
      client.off("packetreceive", onPacket);
      gate.hold();
    }
    gate.open();
    assert.deepEqual(await waitForReadings(s, "ack-1", 2), [1, 2]);
  } finally {
    await client.endAsync();
    await s.close();
  }
});

integration("a resent publish with the same id creates no second task", async () => {
  const s = await startTestSluice({ MQTT_PORT: "0" });
  const client = await connectDevice(`mqtt://127.0.0.1:${mqttAdapter(s).port}`, "dup-1", await s.device("dup-1"));
  try {
    for (let i = 0; i < 3; i++) {
      await client.publishAsync("blog_queuing/invoke", csvReading(1, { id: "reading-1" }), { qos: 1, dup: i > 0 });
    }
    await client.publishAsync("blog_queuing/invoke", csvReading(2, { id: "reading-2" }), { qos: 1 });
    assert.deepEqual(await waitForReadings(s, "dup-1", 2), [1, 2]);
    assert.equal(mqttAdapter(s).stats.accepted, 4, "every resend is acknowledged");
    const tasks = [];
    for await (const e of s.server.sluice.kv.list({ prefix: ["dedup", "dup-1"] })) tasks.push(e.key);
    assert.equal(tasks.length, 2);
  } finally {
    await client.endAsync();
    await s.close();
  }
});

integration("a restart of Sluice while a device keeps publishing loses no acknowledged message", async () => {
  const port = freePort();
  const s = await startTestSluice({ MQTT_PORT: String(port) });
  const token = await s.device("rst-1");
  // mqtt.js keeps unacknowledged QoS 1 messages and sends them again after reconnecting.
  const client = await connectDevice(`mqtt://127.0.0.1:${port}`, "rst-1", token, {
    reconnectPeriod: 50,
    clientId: "rst-1-gateway",
  });
  let reconnects = 0;
  client.on("connect", () => reconnects++);
  try {
    const acked: number[] = [];
    const total = 150;
    const publishing = (async () => {
      for (let n = 0; n < total; n++) {
        await client.publishAsync("blog_queuing/invoke", csvReading(n, { id: `r-${n}` }), { qos: 1 });
        acked.push(n);
      }
    })();
    await waitFor(() => acked.length >= 40, 20_000, "40 acknowledged messages");
    await s.restart();
    assert.equal(mqttAdapter(s).port, port, "the broker is back on the same port");
    await publishing;
    assert.ok(reconnects >= 1, "the device reconnected to the new broker");
    const numbers = await waitForReadings(s, "rst-1", total);
    assert.deepEqual(numbers, acked, "every acknowledged message once, in order");
    assert.deepEqual(await readingNumbers(s, "rst-1"), numbers);
  } finally {
    await client.endAsync();
    await s.close();
  }
});

/** Whether a key is in KV, or in an inbox entry that writes it when it moves. */
async function inKv(kv: Deno.Kv, key: Deno.KvKey): Promise<boolean> {
  if ((await kv.get(key)).versionstamp !== null) return true;
  const same = (k: Deno.KvKey) => JSON.stringify(k) === JSON.stringify(key);
  for await (const e of kv.list<InboxPack>({ prefix: keys.inboxAll() })) {
    if (e.value.entries.some((entry) => entry.sets?.some((d) => same(d.key)))) return true;
  }
  return false;
}

integration("a public script called while a stop lets MQTT publishes commit still runs and answers", async () => {
  const s = await startTestSluice({ MQTT_PORT: "0" });
  const token = await s.device("stop-d1");
  const client = await connectDevice(brokerUrl(s), "stop-d1", token);
  try {
    const gate = gateIngest(s);
    client.publish("blog_queuing/invoke", csvReading(1), { qos: 1 }, () => {});
    await waitFor(() => gate.entered > 0, 5_000, "the publish held at its commit");
    const closing = s.server.close(); // the broker waits (up to 3 s) for that publish to commit
    await new Promise((r) => setTimeout(r, 100));
    const res = await fetch(`${s.url}/test/echo`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}` },
      body: '{"a":1}',
    });
    assert.equal(res.status, 200, await res.clone().text());
    assert.deepEqual((await res.json()).echoed, { a: 1 });
    gate.open();
    await closing;
  } finally {
    client.end(true);
    await s.close();
  }
});
