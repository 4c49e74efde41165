import assert from "node:assert/strict";
import {
  CODE_HEADER,
  DEAD_LETTER_QUEUE,
  declareTopology,
  DROPPED_HEADER,
  INGEST_QUEUE,
  REASON_HEADER,
} from "../../protocols/amqp/mod.ts";
import { AMQP_URL, amqpAdapterOf, amqpClient, amqpReady, csvInvoke, readings, temperatures } from "../helpers/amqp.ts";
import { integration, recordingLogger, startTestSluice, waitFor } from "../helpers/sluice.ts";

integration("1,000 messages from 10 devices over AMQP become 1,000 pump readings, each device's in order", async () => {
  const amqp = await amqpClient();
  const s = await startTestSluice({ AMQP_URL });
  try {
    await amqpReady(s);
    const devices = Array.from({ length: 10 }, (_, i) => `amqp-pump-${i}`);
    const tokens = await Promise.all(devices.map((d) => s.device(d)));
    const started = performance.now();
    const confirms: Promise<void>[] = [];
    for (let n = 0; n < 100; n++) {
      devices.forEach((d, i) => {
        confirms.push(amqp.publish(`${tokens[i]}/blog_queuing/invoke`, csvInvoke(n), { messageId: `${d}-${n}` }));
      });
    }
    await Promise.all(confirms);
    const stats = amqpAdapterOf(s).stats;
    await waitFor(() => stats.accepted === 1000, 30_000, "1,000 commits");
    const ms = performance.now() - started;
    console.log(
      `    1,000 AMQP messages committed and acked in ${ms.toFixed(0)} ms (${(1000 / ms * 1000).toFixed(0)}/s)`,
    );
    await waitFor(async () => (await amqp.count("iot.ingest")) === 0, 10_000, "iot.ingest empty (all acked)");
    for (const d of devices) {
      await readings(s, d, 100);
      assert.deepEqual(await temperatures(s, d), Array.from({ length: 100 }, (_, n) => n), `${d} in send order`);
    }
    assert.equal(stats.duplicates, 0);
    assert.deepEqual(stats.deadLettered, {});
    assert.equal(await amqp.count(DEAD_LETTER_QUEUE), 0);
  } finally {
    await amqp.close();
    await s.close();
  }
});

integration(
  "a poison message lands in iot.dead with its reason and the device's next message is processed",
  async () => {
    const amqp = await amqpClient();
    const s = await startTestSluice({ AMQP_URL });
    try {
      await amqpReady(s);
      const token = await s.device("amqp-poison");
      const other = await s.device("amqp-other");
      await amqp.publish(`${token}/blog_queuing/invoke`, csvInvoke(1), { messageId: "ok-1" });
      await amqp.publish(`${token}/blog_queuing/invoke`, '{"method": "blog/queues/processor", ', {
        messageId: "bad-json",
      });
      // Headers too big to copy with Sluice's own (amqplib encodes a table in 64 KiB): refused all the same.
      await amqp.publish(`${token}/no_such_channel/invoke`, csvInvoke(9), {
        messageId: "big-headers",
        headers: { big: "x".repeat(65_480) },
      });
      // Small as JSON text, too big as sent: 65 KB of UTF-8 in 22k characters, 65 KB of AMQP doubles in 29 KB of JSON.
      await amqp.publish(`${token}/no_such_channel/invoke`, csvInvoke(9), {
        messageId: "wide-headers",
        headers: { big: "€".repeat(21_830) },
      });
      await amqp.publish(`${token}/no_such_channel/invoke`, csvInvoke(9), {
        messageId: "double-headers",
        headers: { n: Array(7_275).fill(0.5) },
      });
      await amqp.publish(`${token}/messages`, {}, { messageId: "no-channel" });
      await amqp.publish(`${token}/blog_queuing/invoke`, csvInvoke(2), { messageId: "ok-2" });
      // The token may also come in a header, and a bare CSV goes to the channel's default script.
      await amqp.publish("blog_queuing/invoke", "3,1.5,45.5:-73.5,2026-11-25T10:00:00Z", {
        messageId: "ok-3",
        headers: { "sluice-token": token },
      });
      await amqp.publish("sl_not_a_token/blog_queuing/invoke", csvInvoke(9), { messageId: "bad-token" });
      await amqp.publish(`${token}/no_such_channel/invoke`, csvInvoke(9), { messageId: "bad-channel" });
      await amqp.publish(`${token}/blog_queuing/invoke`, { method: "no/such/script" }, { messageId: "bad-script" });
      await amqp.publish(`${token}/blog_queuing/invoke`, csvInvoke(9), {
        messageId: "two-tokens",
        headers: { "sluice-token": other },
      });
      await amqp.publish("blog_queuing/invoke", csvInvoke(9), { messageId: "anonymous" });
      await amqp.publish(`${token}/blog_queuing/invoke`, { ...csvInvoke(9), id: "other-id" }, {
        messageId: "ids-differ",
      });
      await amqp.publish(`${token}/_pumps/messages`, { fake: true }, { messageId: "system-channel" });

      await readings(s, "amqp-poison", 3, 20_000);
      assert.deepEqual(await temperatures(s, "amqp-poison"), [1, 2, 3]);
      await waitFor(async () => (await amqp.count(DEAD_LETTER_QUEUE)) === 12, 10_000, "12 dead letters");
      const dead = new Map((await amqp.drain(DEAD_LETTER_QUEUE)).map((m) => [m.properties.messageId, m]));
      const expected: Record<string, [string, RegExp]> = {
        "bad-json": ["malformed_json", /not valid JSON/],
        "bad-token": ["unauthorized", /Unknown or revoked token/],
        "bad-channel": ["not_found", /Channel "no_such_channel" does not exist/],
        "bad-script": ["not_found", /Unknown script "no\/such\/script"/],
        "two-tokens": ["validation_failed", /differ/],
        "anonymous": ["unauthorized", /needs a device token/],
        "ids-differ": ["validation_failed", /Message id given twice/],
        "system-channel": ["forbidden", /belongs to Sluice/],
        "big-headers": ["not_found", /Channel "no_such_channel" does not exist/],
        "wide-headers": ["not_found", /Channel "no_such_channel" does not exist/],
        "no-channel": ["validation_failed", /token where its channel goes/],
        "double-headers": ["not_found", /Channel "no_such_channel" does not exist/],
      };
      assert.deepEqual([...dead.keys()].sort(), Object.keys(expected).sort());
      for (const [id, [code, reason]] of Object.entries(expected)) {
        const m = dead.get(id)!;
        assert.equal(m.properties.headers?.[CODE_HEADER], code, id);
        assert.match(String(m.properties.headers?.[REASON_HEADER]), reason, id);
        assert.doesNotMatch(String(m.properties.headers?.[REASON_HEADER]), /sl_/, `${id}: no token in the reason`);
      }
      assert.equal(dead.get("bad-json")!.content.toString(), '{"method": "blog/queues/processor", ', "kept as sent");
      assert.equal(dead.get("big-headers")!.properties.headers?.big, undefined);
      for (const id of ["big-headers", "wide-headers", "double-headers"]) {
        assert.match(String(dead.get(id)!.properties.headers?.[DROPPED_HEADER]), /bytes of headers, too big/, id);
      }
      assert.equal(dead.get("bad-json")!.fields.routingKey, `${token}/blog_queuing/invoke`);
      assert.equal(await amqp.count("iot.ingest"), 0, "refused messages are acked");
      const refused = await (await s.admin("/admin/refused")).json();
      const amqpRefusals = refused.refused.filter((r: { protocol: string }) => r.protocol === "amqp");
      assert.ok(amqpRefusals.length >= 1, "refusals are also in the refused log");
      // Unreadable, so never an envelope: its record still names the device and channel of its routing key.
      const unreadable = amqpRefusals.find((r: { code: string }) => r.code === "malformed_json");
      assert.deepEqual([unreadable?.device, unreadable?.channel], ["amqp-poison", "blog_queuing"]);
      // A token where the channel goes is never taken for (nor recorded as) a channel name.
      assert.ok(!JSON.stringify(refused).includes(token), "no token in the refused log");
      const noChannel = amqpRefusals.find((r: { reason: string }) => /token where its channel goes/.test(r.reason));
      assert.deepEqual([noChannel?.device, noChannel?.channel], ["amqp-poison", undefined]);
      assert.ok(amqpRefusals.every((r: { reason: string }) => !r.reason.includes(token)));
    } finally {
      await amqp.close();
      await s.close();
    }
  },
);

integration(
  "a Sluice that finds iot.ingest consumed by someone else says it waits on standby and why that refuses devices",
  async () => {
    const amqp = await amqpClient();
    await declareTopology(amqp.ch);
    const other = await amqp.ch.consume(INGEST_QUEUE, () => {}, { noAck: false });
    const log = recordingLogger();
    const s = await startTestSluice({ AMQP_URL }, undefined, { log });
    try {
      await amqpReady(s);
      const line = log.lines.find((l) => l.includes(`${INGEST_QUEUE} already has 1 consumer(s)`)) ?? "";
      assert.match(line, /^warn .*own vhost/, log.lines.join("\n"));
    } finally {
      await amqp.ch.cancel(other.consumerTag);
      await amqp.close();
      await s.close();
    }
  },
);

integration("a Sluice alone on iot.ingest says nothing of other consumers", async () => {
  const amqp = await amqpClient();
  const log = recordingLogger();
  const s = await startTestSluice({ AMQP_URL }, undefined, { log });
  try {
    await amqpReady(s);
    assert.equal(log.lines.filter((l) => l.includes("consumer(s)")).length, 0, log.lines.join("\n"));
  } finally {
    await amqp.close();
    await s.close();
  }
});
