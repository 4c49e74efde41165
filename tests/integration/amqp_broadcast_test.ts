import assert from "node:assert/strict";
import type { ConsumeMessage } from "amqplib";
import { BROADCAST_EXCHANGE } from "../../protocols/amqp/mod.ts";
import { AMQP_URL, amqpClient, amqpReady } from "../helpers/amqp.ts";
import { integration, post, startTestSluice, type TestSluice, waitFor } from "../helpers/sluice.ts";
import { freePort } from "../crash/child.ts";

integration("topic messages from HTTP and AMQP arrive at an AMQP consumer bound to iot.broadcast", async () => {
  const amqp = await amqpClient();
  const s = await startTestSluice({ AMQP_URL });
  try {
    await amqpReady(s);
    const token = await s.device("amqp-bc");
    const { queue } = await amqp.ch.assertQueue("", { exclusive: true });
    await amqp.ch.bindQueue(queue, BROADCAST_EXCHANGE, "blog_queuing");
    await amqp.ch.bindQueue(queue, BROADCAST_EXCHANGE, "alerts");
    const got: ConsumeMessage[] = [];
    await amqp.ch.consume(queue, (m) => m && got.push(m), { noAck: true });
    const on = (channel: string) => got.filter((m) => m.fields.routingKey === channel);
    const arrived = (channel: string, n: number) =>
      waitFor(() => on(channel).length >= n, 15_000, `${n} message(s) on ${channel}`).then(() => on(channel));

    const res = await post(`${s.url}/channels/blog_queuing/messages`, token, { hello: "amqp" });
    assert.equal(res.status, 202);
    const { seq } = await res.json();
    const [first] = await arrived("blog_queuing", 1);
    assert.deepEqual(JSON.parse(first!.content.toString()), { hello: "amqp" });
    assert.equal(first!.properties.contentType, "application/json");
    assert.equal(first!.properties.headers?.["sluice-seq"], seq);
    assert.equal(first!.properties.messageId, `blog_queuing/${seq}`);

    // A channel created after the start is followed from its first message; AMQP publishes count too.
    const created = await s.admin("/admin/channels", { method: "POST", body: JSON.stringify({ name: "alerts" }) });
    assert.equal(created.status, 201);
    await created.body?.cancel();
    const published = await post(`${s.url}/channels/alerts/messages`, token, { level: 3 });
    assert.equal(published.status, 202);
    await published.body?.cancel();
    await amqp.publish(`${token}/alerts/messages`, "pump 7 is hot", { contentType: "text/plain" });
    const alerts = await arrived("alerts", 2);
    assert.deepEqual(JSON.parse(alerts[0]!.content.toString()), { level: 3 });
    assert.equal(alerts[1]!.content.toString(), "pump 7 is hot");
    assert.equal(alerts[1]!.properties.contentType, "text/plain");
    assert.deepEqual(alerts.map((m) => m.properties.headers?.["sluice-seq"]), [1, 2]);
    assert.equal(on("blog_queuing").length, 1, "each message once");
  } finally {
    await amqp.close();
    await s.close();
  }
});

integration(
  "topic messages published while RabbitMQ was away go out after a restart, each once and in order",
  async () => {
    const amqp = await amqpClient();
    const away = await startTestSluice({ AMQP_URL: `amqp://guest:guest@127.0.0.1:${freePort()}` });
    let again: TestSluice | null = null;
    try {
      const token = await away.device("amqp-away");
      for (const n of [1, 2, 3]) {
        const res = await post(`${away.url}/channels/blog_queuing/messages`, token, { n });
        assert.equal(res.status, 202);
        await res.body?.cancel();
      }
      await away.stop(); // none of them reached a broker

      const { queue } = await amqp.ch.assertQueue("", { exclusive: true });
      await amqp.ch.bindQueue(queue, BROADCAST_EXCHANGE, "blog_queuing");
      const got: ConsumeMessage[] = [];
      await amqp.ch.consume(queue, (m) => m && got.push(m), { noAck: true });
      again = await startTestSluice({ AMQP_URL }, away.kvDir);
      await amqpReady(again);
      const res = await post(`${again.url}/channels/blog_queuing/messages`, token, { n: 4 });
      assert.equal(res.status, 202);
      await res.body?.cancel();
      await waitFor(() => got.length >= 4, 15_000, "4 messages on blog_queuing");
      await new Promise((r) => setTimeout(r, 300)); // a repeat would show by now
      assert.deepEqual(got.map((m) => JSON.parse(m.content.toString()).n), [1, 2, 3, 4]);
      assert.deepEqual(got.map((m) => m.properties.headers?.["sluice-seq"]), [1, 2, 3, 4]);
    } finally {
      await amqp.close();
      await again?.close();
      await away.close();
    }
  },
);
