import assert from "node:assert/strict";
import type { ConsumeMessage } from "amqplib";
import { BROADCAST_EXCHANGE } from "../../protocols/amqp/mod.ts";
import type { Server } from "../../server.ts";
import { AMQP_URL, amqpClient, amqpReady } from "../helpers/amqp.ts";
import { ADMIN, deployInstance, integration, waitFor } from "../helpers/sluice.ts";

/** A deploy-mode instance with the AMQP adapter, on a KV shared with the others. */
function instance(kv: Deno.Kv, kvPath: string): Promise<Server> {
  return deployInstance(kv, kvPath, { AMQP_URL });
}

integration(
  "with two deploy-mode instances each topic message reaches iot.broadcast once; the other re-publishes once one stops",
  async () => {
    const amqp = await amqpClient();
    const dir = await Deno.makeTempDir({ prefix: "sluice-republish-" });
    const kv = await Deno.openKv(`${dir}/shared.kv`);
    const a = await instance(kv, `${dir}/shared.kv`);
    const b = await instance(kv, `${dir}/shared.kv`);
    let aClosed = false;
    try {
      const { queue } = await amqp.ch.assertQueue("", { exclusive: true });
      await amqp.ch.bindQueue(queue, BROADCAST_EXCHANGE, "blog_queuing");
      const got: ConsumeMessage[] = [];
      await amqp.ch.consume(queue, (m) => m && got.push(m), { noAck: true });
      const publish = async (server: Server, n: number) => {
        const res = await fetch(`${server.url}/channels/blog_queuing/messages`, {
          method: "POST",
          headers: { authorization: `Bearer ${ADMIN}` },
          body: JSON.stringify({ n }),
        });
        assert.equal(res.status, 202, await res.text());
      };
      const ns = () => got.map((m) => JSON.parse(m.content.toString()).n);
      // Both instances connected (one consumes iot.ingest, the other waits) before the first message.
      for (const server of [a, b]) await amqpReady(server);
      for (let n = 1; n <= 10; n++) await publish(n % 2 ? a : b, n);
      await waitFor(() => got.length >= 10, 15_000, "10 messages on iot.broadcast");
      await new Promise((r) => setTimeout(r, 1500)); // a second copy would come meanwhile
      assert.deepEqual(ns(), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);

      // Whichever holds the lease stops (giving it back): the other re-publishes from where it stood.
      await a.close();
      aClosed = true;
      for (let n = 11; n <= 15; n++) await publish(b, n);
      await waitFor(() => got.length >= 15, 15_000, "15 messages on iot.broadcast");
      await new Promise((r) => setTimeout(r, 1500));
      assert.deepEqual(ns(), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]);
    } finally {
      if (!aClosed) await a.close();
      await b.close();
      kv.close();
      await amqp.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
);
