import assert from "node:assert/strict";
import { INGEST_QUEUE } from "../../protocols/amqp/mod.ts";
import { AMQP_URL, amqpAdapterOf, amqpClient, amqpReady, csvInvoke, readings, temperatures } from "../helpers/amqp.ts";
import { integration, startTestSluice, type TestSluice } from "../helpers/sluice.ts";
import { trueHead } from "../../store/heads.ts";

integration(
  "messages left in iot.ingest across a Sluice restart are processed once after the start, past the sender's rate limit",
  async () => {
    const amqp = await amqpClient();
    // The broker holds the backlog: it comes back faster than it was sent, and none of it is cut.
    const env = { AMQP_URL, RATE_LIMIT: "20/s" };
    const s = await startTestSluice(env);
    let again: TestSluice | null = null;
    try {
      await amqpReady(s);
      const token = await s.device("amqp-restart");
      const send = (n: number) =>
        amqp.publish(`${token}/blog_queuing/invoke`, csvInvoke(n), { messageId: `restart-${n}` });
      for (let n = 0; n < 20; n++) await send(n);
      await readings(s, "amqp-restart", 20);
      // Stop while a burst is being consumed, then publish more while Sluice is down.
      await Promise.all(Array.from({ length: 80 }, (_, i) => send(20 + i)));
      await s.stop();
      await Promise.all(Array.from({ length: 100 }, (_, i) => send(100 + i)));
      assert.ok((await amqp.count(INGEST_QUEUE)) >= 100, "messages wait in iot.ingest while Sluice is stopped");

      again = await startTestSluice(env, s.kvDir);
      await readings(again, "amqp-restart", 200);
      assert.deepEqual(await temperatures(again, "amqp-restart"), Array.from({ length: 200 }, (_, n) => n));
      assert.equal(await amqp.count(INGEST_QUEUE), 0);
    } finally {
      await amqp.close();
      await again?.close();
      await s.close();
    }
  },
);

integration("a redelivered message whose id was already committed creates no second task", async () => {
  const amqp = await amqpClient();
  const s = await startTestSluice({ AMQP_URL });
  let again: TestSluice | null = null;
  try {
    await amqpReady(s);
    const token = await s.device("amqp-redelivered");
    const key = `${token}/blog_queuing/invoke`;
    await amqp.publish(key, csvInvoke(1), { messageId: "only-once" });
    await readings(s, "amqp-redelivered", 1);
    await s.stop();

    // The same message comes back, as after a crash between the commit and the ack: a consumer
    // takes it and goes away without acking, so the broker hands it out again flagged redelivered.
    await amqp.publish(key, csvInvoke(1), { messageId: "only-once" });
    await amqp.publish(key, csvInvoke(2), { messageId: "after" });
    const taken = await amqp.ch.get(INGEST_QUEUE, { noAck: false });
    assert.ok(taken && taken.properties.messageId === "only-once" && !taken.fields.redelivered);
    amqp.ch.nack(taken, false, true);

    again = await startTestSluice({ AMQP_URL }, s.kvDir);
    await readings(again, "amqp-redelivered", 2);
    const stats = amqpAdapterOf(again).stats;
    assert.equal(stats.redelivered, 1, "Sluice saw the message flagged redelivered");
    assert.equal(stats.duplicates, 1, "and recognised its id");
    assert.equal(stats.accepted, 1);
    assert.deepEqual(await temperatures(again, "amqp-redelivered"), [1, 2]);
    const head = await trueHead(again.server.sluice.kv, "t/blog_queuing/amqp-redelivered");
    assert.equal(head, 2, "two tasks, not three");
  } finally {
    await amqp.close();
    await again?.close();
    await s.close();
  }
});
