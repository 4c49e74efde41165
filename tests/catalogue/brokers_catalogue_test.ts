import assert from "node:assert/strict";
import { AMQP_URL, amqpAdapterOf, amqpClient, amqpReady } from "../helpers/amqp.ts";
import { mqttAdapter } from "../helpers/mqtt.ts";
import { ADMIN, integration, startTestSluice, waitFor } from "../helpers/sluice.ts";
import { amqpCases } from "./amqp_cases.ts";
import { runAmqpCases } from "./amqp_runner.ts";
import { mqttCases } from "./mqtt_cases.ts";
import { runMqttCases, startSlowMqttCases, validSender } from "./mqtt_runner.ts";
import { streamHeads } from "./stream_heads.ts";

const VALID = JSON.stringify({ method: "blog/queues/processor", params: { data: "20,1,45:-73,2026-11-25T10:00:00Z" } });

integration(
  `the bad-input catalogue (${mqttCases.length} MQTT and ${amqpCases.length} AMQP cases) is refused cleanly`,
  async () => {
    const amqp = await amqpClient();
    const s = await startTestSluice({ MQTT_PORT: "0", AMQP_URL, MAX_BODY_BYTES: "1024" });
    try {
      await amqpReady(s);
      const res = await s.admin("/admin/channels", { method: "POST", body: JSON.stringify({ name: "plain" }) });
      assert.equal(res.status, 201);
      await res.body?.cancel();
      const victim = await s.device("victim"), other = await s.device("other");
      const port = mqttAdapter(s).port!;
      const context = { victim: { id: "victim", token: victim }, other: { id: "other", token: other }, admin: ADMIN };
      const sender = await validSender(port, context, VALID);
      await sender.send();
      await waitFor(async () => (await s.admin("/pumps/victim")).status === 200);
      const rssBefore = Deno.memoryUsage().rss, heapBefore = Deno.memoryUsage().heapUsed;
      const refusedCounts = s.server.sluice.refused.counts;

      const target = { port, stats: mqttAdapter(s).stats, refusedCounts, context, sendValid: sender.send };
      const slow = await startSlowMqttCases(mqttCases, target);
      const mqttRun = await runMqttCases(mqttCases, target);
      const amqpRun = await runAmqpCases(amqpCases, {
        client: amqp,
        stats: amqpAdapterOf(s).stats,
        refusedCounts,
        context: { victim, other, admin: ADMIN },
        valid: { routingKey: `${victim}/blog_queuing/invoke`, body: VALID },
      });
      const wrong = [...mqttRun.wrong, ...amqpRun.wrong, ...await slow.check()];
      assert.deepEqual(wrong, [], "every case gets its refusal");
      await sender.send();
      await sender.close();

      // Nothing half-written: only the valid messages became tasks, nothing was published.
      const valid = 2 + mqttRun.valid + amqpRun.valid;
      const heads = await streamHeads(s.server.sluice);
      assert.equal(heads.get("t/blog_queuing/victim"), valid, "only the valid messages became tasks");
      assert.deepEqual([...heads.keys()].filter((k) => k.startsWith("t/") && k !== "t/blog_queuing/victim"), []);
      assert.deepEqual(
        [...heads.keys()].filter((k) => k.startsWith("m/") && k !== "m/_pumps"),
        [],
        "nothing published",
      );
      // Refusals are also in the refused log (one record per device and code a second, the rest counted).
      const recorded = await waitFor(async () => {
        const list = (await (await s.admin("/admin/refused?limit=1000")).json()).refused as {
          protocol: string;
          code: string;
        }[];
        const kinds = new Set(list.map((r) => `${r.protocol}:${r.code}`));
        return ["mqtt:malformed_json", "mqtt:unauthorized", "amqp:malformed_json", "amqp:forbidden"].every((k) =>
            kinds.has(k)
          )
          ? kinds
          : null;
      });
      assert.ok(recorded);
      const growth = (Deno.memoryUsage().rss - rssBefore) / 1024 / 1024;
      const heapGrowth = (Deno.memoryUsage().heapUsed - heapBefore) / 1024 / 1024;
      assert.ok(growth < 100, `memory grew ${growth.toFixed(1)} MiB`);
      assert.ok(heapGrowth < 50, `the JS heap grew ${heapGrowth.toFixed(1)} MiB`);
      const health = await (await fetch(`${s.url}/healthz`)).json();
      assert.equal(health.status, "ok");
      assert.equal(await amqp.count("iot.ingest"), 0, "every AMQP message was acked");
      console.log(
        `catalogue: ${mqttCases.length} MQTT + ${amqpCases.length} AMQP cases refused, ${valid} valid messages ` +
          `accepted between them, RSS ${growth >= 0 ? "+" : ""}${growth.toFixed(1)} MiB, ` +
          `JS heap ${heapGrowth >= 0 ? "+" : ""}${heapGrowth.toFixed(1)} MiB`,
      );
    } finally {
      await amqp.close();
      await s.close();
    }
  },
);
