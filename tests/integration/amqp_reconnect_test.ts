import assert from "node:assert/strict";
import type { ConsumeMessage } from "amqplib";
import { BROADCAST_EXCHANGE, INGEST_QUEUE } from "../../protocols/amqp/mod.ts";
import {
  AMQP_URL,
  amqpAdapterOf,
  amqpClient,
  amqpReady,
  csvInvoke,
  forceCloseConnection,
  readings,
  temperatures,
} from "../helpers/amqp.ts";
import { integration, post, recordingLogger, startTestSluice, waitFor } from "../helpers/sluice.ts";
import { tcpProxy } from "../helpers/tcp_proxy.ts";

integration("a connection closed by the broker mid-stream loses nothing and duplicates nothing", async () => {
  const amqp = await amqpClient();
  const log = recordingLogger();
  const s = await startTestSluice({ AMQP_URL }, undefined, { log });
  try {
    await amqpReady(s);
    const adapter = amqpAdapterOf(s);
    const devices = Array.from({ length: 10 }, (_, i) => `amqp-rc-${i}`);
    const tokens = await Promise.all(devices.map((d) => s.device(d)));
    const sent = devices.map(() => 0);
    const sendRound = () =>
      Promise.all(devices.map((d, i) => {
        const n = sent[i]!++;
        return amqp.publish(`${tokens[i]}/blog_queuing/invoke`, csvInvoke(n), { messageId: `${d}-${n}` });
      }));
    // A steady stream before, during and after the close, so deliveries are in flight when it lands.
    let streaming = true;
    const stream = (async () => {
      while (streaming) {
        await sendRound();
        await new Promise((r) => setTimeout(r, 20)); // pace: about 500 messages a second
      }
    })();
    await waitFor(() => adapter.stats.accepted >= 200, 30_000, "200 commits before the close");
    await forceCloseConnection(adapter);
    await waitFor(() => adapter.stats.connections >= 2, 30_000, "the adapter to reconnect");
    const atReconnect = sent[0]!;
    await waitFor(() => sent[0]! >= atReconnect + 20, 30_000, "more messages after the reconnect");
    streaming = false;
    await stream;
    // The log says why: the broker's reason, not "a channel closed" (the channels report their end first).
    assert.match(log.lines.find((l) => l.includes("lost")) ?? "", /CONNECTION_FORCED - closed by a Sluice test/);
    const total = sent.reduce((a, b) => a + b, 0);
    await waitFor(async () => (await amqp.count("iot.ingest")) === 0, 30_000, "iot.ingest drained");
    for (const [i, d] of devices.entries()) {
      await readings(s, d, sent[i]!);
      const temps = await temperatures(s, d);
      assert.deepEqual(temps, Array.from({ length: sent[i]! }, (_, n) => n), `${d}: each message once, in order`);
    }
    // Deliveries unacked at the close came back (flagged redelivered); those already committed were
    // recognised by their id and acked without a second task.
    const { stats } = adapter;
    assert.equal(stats.accepted, total, `every message committed once (${JSON.stringify(stats)})`);
    assert.deepEqual(stats.deadLettered, {});
  } finally {
    await amqp.close();
    await s.close();
  }
});

integration("while RabbitMQ is unreachable AMQP is degraded in /healthz and HTTP keeps serving", async () => {
  const s = await startTestSluice({ AMQP_URL: "amqp://guest:guest@127.0.0.1:1" });
  try {
    const health = await (await fetch(`${s.url}/healthz`)).json();
    assert.equal(health.status, "degraded");
    assert.equal(health.checks.amqp, "degraded");
    assert.equal(health.checks.kv, "ok");
    const token = await s.device("amqp-http-only");
    const res = await post(`${s.url}/channels/blog_queuing/invoke`, token, csvInvoke(1));
    assert.equal(res.status, 202);
    await res.body?.cancel();
    await readings(s, "amqp-http-only", 1);
  } finally {
    await s.close();
  }
});

integration(
  "when iot.ingest is deleted under a running Sluice, it is declared again and consumption resumes",
  async () => {
    const amqp = await amqpClient();
    const s = await startTestSluice({ AMQP_URL });
    try {
      await amqpReady(s);
      const adapter = amqpAdapterOf(s);
      const token = await s.device("amqp-redeclare");
      await amqp.publish(`${token}/blog_queuing/invoke`, csvInvoke(1), { messageId: "before" });
      await readings(s, "amqp-redeclare", 1);
      await amqp.ch.deleteQueue(INGEST_QUEUE); // the broker cancels Sluice's consumer
      await waitFor(() => adapter.stats.connections >= 2, 30_000, "a new connection");
      await amqpReady(s);
      assert.equal((await amqp.ch.checkQueue(INGEST_QUEUE)).consumerCount, 1);
      await amqp.publish(`${token}/blog_queuing/invoke`, csvInvoke(2), { messageId: "after" });
      await readings(s, "amqp-redeclare", 2);
      assert.deepEqual(await temperatures(s, "amqp-redeclare"), [1, 2]);
    } finally {
      await amqp.close();
      await s.close();
    }
  },
);

integration(
  "while RabbitMQ is cut off Sluice is degraded and serves HTTP; once back, what was published meanwhile is processed and re-published once",
  async () => {
    const amqp = await amqpClient();
    const { hostname, port } = new URL(AMQP_URL);
    const proxy = tcpProxy({ hostname, port: Number(port || 5672) });
    const via = new URL(AMQP_URL);
    via.port = String(proxy.port);
    const s = await startTestSluice({ AMQP_URL: via.href });
    try {
      await amqpReady(s);
      const health = async () => (await (await fetch(`${s.url}/healthz`)).json()).checks.amqp;
      const token = await s.device("amqp-cut");
      const { queue } = await amqp.ch.assertQueue("", { exclusive: true });
      await amqp.ch.bindQueue(queue, BROADCAST_EXCHANGE, "blog_queuing");
      const broadcast: ConsumeMessage[] = [];
      await amqp.ch.consume(queue, (m) => m && broadcast.push(m), { noAck: true });
      const send = (n: number) => amqp.publish(`${token}/blog_queuing/invoke`, csvInvoke(n), { messageId: `cut-${n}` });
      await send(0);
      await readings(s, "amqp-cut", 1);

      proxy.cut();
      await waitFor(async () => (await health()) === "degraded", 10_000, "AMQP degraded");
      const res = await post(`${s.url}/channels/blog_queuing/messages`, token, { note: "while cut" });
      assert.equal(res.status, 202, "HTTP keeps serving");
      const { seq } = await res.json();
      for (let n = 1; n <= 50; n++) await send(n); // straight to RabbitMQ: they wait in iot.ingest
      assert.equal(await amqp.count(INGEST_QUEUE), 50);
      assert.equal(await health(), "degraded");

      proxy.restore();
      await amqpReady(s, 30_000);
      await readings(s, "amqp-cut", 51);
      assert.deepEqual(await temperatures(s, "amqp-cut"), Array.from({ length: 51 }, (_, n) => n));
      await waitFor(() => broadcast.length >= 1, 15_000, "the topic message re-published");
      assert.deepEqual(JSON.parse(broadcast[0]!.content.toString()), { note: "while cut" });
      assert.equal(broadcast[0]!.properties.headers?.["sluice-seq"], seq);
      assert.equal(broadcast.length, 1);
    } finally {
      await amqp.close();
      await s.close();
      proxy.close();
    }
  },
);
