import assert from "node:assert/strict";
import { integration, post, startTestSluice, waitFor } from "../helpers/sluice.ts";
import {
  brokerUrl,
  closedWithin,
  connectDevice,
  csvReading,
  mqttAdapter,
  refusals,
  waitForReadings,
} from "../helpers/mqtt.ts";

integration(
  "a malformed payload is acknowledged, recorded at /admin/refused and does not affect the next message",
  async () => {
    const s = await startTestSluice({ MQTT_PORT: "0" });
    const token = await s.device("bad-1");
    const client = await connectDevice(brokerUrl(s), "bad-1", token);
    try {
      await s.admin("/admin/channels", { method: "POST", body: JSON.stringify({ name: "plain" }) });
      await client.publishAsync("blog_queuing/invoke", '{"method": "blog/queues/processor", "params":', { qos: 1 });
      await client.publishAsync("blog_queuing/invoke", csvReading(1), { qos: 1 });
      // A bare CSV string is fine where the channel has a default script, malformed elsewhere.
      await client.publishAsync("blog_queuing/invoke", "25,1.4,45.5:-73.5,2026-11-25T00:00:02.000Z", { qos: 1 });
      await client.publishAsync("plain/invoke", "25,1.4,45.5:-73.5,2026-11-25T00:00:03.000Z", { qos: 1 });
      await client.publishAsync("nowhere/invoke", csvReading(4), { qos: 1 });
      await client.publishAsync(`${token}/blog_queuing/invoke`, JSON.stringify({ method: "no/such/script" }), {
        qos: 1,
      });
      await client.publishAsync("blog_queuing/invoke", csvReading(5), { qos: 1 });
      assert.deepEqual(await waitForReadings(s, "bad-1", 3), [1, 2, 5]);
      const records = (await waitFor(async () => {
        const r = await refusals(s);
        return r.length >= 2 ? r : null;
      }))!;
      // At most one record per device per reason per second; the rest are only counted.
      assert.deepEqual([...new Set(records.map((r) => `${r.device} ${r.code}`))].sort(), [
        "bad-1 malformed_json",
        "bad-1 not_found",
      ]);
      assert.equal(mqttAdapter(s).stats.refused, 4);
      // /metrics counts them under the codes the records give (the CSV on `plain` too: malformed JSON there).
      const metrics = await (await fetch(`${s.url}/metrics`)).text();
      assert.match(metrics, /sluice_ingest_refused_total\{protocol="mqtt",code="malformed_json"\} 2/);
      assert.match(metrics, /sluice_ingest_refused_total\{protocol="mqtt",code="not_found"\} 2/);
      assert.doesNotMatch(metrics, /sluice_ingest_refused_total\{protocol="mqtt",code="validation_failed"\}/);
      assert.ok(client.connected, "refusals do not disconnect");
      assert.ok(!JSON.stringify(records).includes(token), "no token in the refused log");
    } finally {
      await client.endAsync();
      await s.close();
    }
  },
);

integration(
  "a topic copied from the HTTP path, or of the wrong shape, is refused with the topic a logged-in device uses",
  async () => {
    const s = await startTestSluice({ MQTT_PORT: "0" });
    const token = await s.device("lost-1");
    const client = await connectDevice(brokerUrl(s), "lost-1", token);
    try {
      // Acknowledged and recorded: the HTTP path's `channels/` level where a token would go.
      await client.publishAsync("channels/blog_queuing/invoke", csvReading(1), { qos: 1 });
      const [record] = (await waitFor(async () => {
        const r = await refusals(s);
        return r.length >= 1 ? r : null;
      }))!;
      assert.equal(record!.code, "unauthorized");
      assert.match(record!.reason, /first level is not a device token.*<channel>\/invoke or <channel>\/messages/);
      // A wrong shape closes the connection (QoS 0 here: nothing to wait for); its record names both forms.
      await client.publishAsync("blog_queuing", csvReading(2), { qos: 0 });
      const forbidden = (await waitFor(async () => {
        const r = (await refusals(s)).filter((x) => x.code === "forbidden");
        return r.length >= 1 ? r : null;
      }))!;
      assert.match(forbidden[0]!.reason, /publish on <channel>\/invoke or <channel>\/messages.*<token>\/<channel>/);
    } finally {
      await client.endAsync().catch(() => {});
      await s.close();
    }
  },
);

integration("over the rate limit a publish is acknowledged and counted, never recorded", async () => {
  const s = await startTestSluice({ MQTT_PORT: "0", RATE_LIMIT: "5/s" });
  const client = await connectDevice(brokerUrl(s), "fast-1", await s.device("fast-1"));
  try {
    await Promise.all(
      Array.from({ length: 30 }, (_, n) => client.publishAsync("blog_queuing/invoke", csvReading(n), { qos: 1 })),
    );
    const stats = mqttAdapter(s).stats;
    assert.ok(stats.quota > 0, `some publishes were over the limit: ${JSON.stringify(stats)}`);
    assert.equal(stats.accepted + stats.quota, 30);
    assert.deepEqual(await refusals(s), []);
  } finally {
    await client.endAsync();
    await s.close();
  }
});

integration("a packet over the size limit disconnects the client before it is buffered", async () => {
  const s = await startTestSluice({ MQTT_PORT: "0", MAX_BODY_BYTES: "1000" });
  const client = await connectDevice(brokerUrl(s), "big-1", await s.device("big-1"));
  try {
    const closed = closedWithin(client, 5000);
    client.publish("blog_queuing/invoke", "x".repeat(5000), { qos: 1 });
    await closed;
    assert.equal(mqttAdapter(s).stats.accepted, 0);
  } finally {
    client.end(true);
    await s.close();
  }
});

integration("a text message is counted as sent: MAX_BODY_BYTES of text pass, one byte more is refused", async () => {
  const s = await startTestSluice({ MQTT_PORT: "0", MAX_BODY_BYTES: "1000" });
  const client = await connectDevice(brokerUrl(s), "text-1", await s.device("text-1"));
  try {
    await client.publishAsync("blog_queuing/messages", "x".repeat(1000), { qos: 1 });
    await client.publishAsync("blog_queuing/messages", "é".repeat(500) + "x", { qos: 1 });
    assert.equal(mqttAdapter(s).stats.accepted, 1);
    const records = await waitFor(async () => ((await refusals(s)).length ? await refusals(s) : null));
    assert.deepEqual(records.map((r) => [r.code, r.reason]), [
      ["payload_too_large", "Message is 1001 bytes, over the limit of 1000"],
    ]);
  } finally {
    await client.endAsync();
    await s.close();
  }
});

integration("a JSON string payload is measured as received, quotes included, as HTTP measures its body", async () => {
  const s = await startTestSluice({ MQTT_PORT: "0", MAX_BODY_BYTES: "1000" });
  const token = await s.device("quote-1");
  const client = await connectDevice(brokerUrl(s), "quote-1", token);
  try {
    const fits = JSON.stringify("x".repeat(998)); // 1000 bytes with its quotes
    const over = JSON.stringify("x".repeat(999)); // 1001 bytes
    const http = async (body: string) => {
      const res = await post(`${s.url}/channels/blog_queuing/messages`, token, body);
      await res.body?.cancel();
      return res.status;
    };
    assert.ok((await http(fits)) < 300, "HTTP takes 1000 bytes");
    assert.equal(await http(over), 413, "HTTP refuses 1001 bytes");
    await client.publishAsync("blog_queuing/messages", fits, { qos: 1 });
    await client.publishAsync("blog_queuing/messages", over, { qos: 1 });
    assert.equal(mqttAdapter(s).stats.accepted, 1, "MQTT takes the same 1000 bytes and not the 1001");
    const records = await waitFor(async () => {
      const r = (await refusals(s)).filter((r) => r.code === "payload_too_large" && r.device === "quote-1");
      return r.length ? r : null;
    });
    assert.deepEqual(records.map((r) => r.reason), ["Message is 1001 bytes, over the limit of 1000"]);
  } finally {
    await client.endAsync();
    await s.close();
  }
});
