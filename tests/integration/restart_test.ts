import assert from "node:assert/strict";
import { inBothModes, post, startTestSluice, waitFor } from "../helpers/sluice.ts";

inBothModes(
  "a restart keeps pumps and tasks, and work queued before the stop is processed after the start",
  async (mode) => {
    const s = await startTestSluice(mode);
    try {
      const token = await s.device("pump-r");
      const reading = await (await post(`${s.url}/channels/blog_queuing/invoke`, token, {
        method: "blog/queues/processor",
        params: { data: "30,2,40:-70,2026-11-25T10:00:00Z" },
      })).json();
      // The first task waits for the script workers to start (on a cold cache, Deno type-checks them first).
      await waitFor(
        async () => (await (await s.admin(`/tasks/${reading.taskId}`)).json()).status === "done",
        30_000,
        "the first task",
      );
      const before = await (await s.admin("/pumps/pump-r")).json();

      const slow: string[] = [];
      for (let n = 0; n < 8; n++) {
        const res = await post(`${s.url}/channels/blog_queuing/invoke`, token, {
          method: "test/slow",
          params: { ms: 150, n },
        });
        slow.push((await res.json()).taskId);
      }
      // Tasks queued together run as one batch: stop while its first task runs.
      await waitFor(async () => (await (await s.admin(`/tasks/${slow[0]}`)).json()).status === "running");
      await s.restart();
      const statuses = await Promise.all(slow.map(async (id) => (await (await s.admin(`/tasks/${id}`)).json()).status));
      assert.ok(
        statuses.includes("queued") || statuses.includes("running"),
        `work was left for after the start: ${statuses}`,
      );
      const after = await (await s.admin("/pumps/pump-r")).json();
      assert.deepEqual(after, before, "pump state survives the restart");
      assert.equal((await (await s.admin(`/tasks/${reading.taskId}`)).json()).status, "done");
      for (const id of slow) {
        await waitFor(async () => (await (await s.admin(`/tasks/${id}`)).json()).status === "done", 10_000, id);
      }
      const order = [];
      for await (const e of s.server.sluice.kv.list<{ at: number }>({ prefix: ["doc", "slow"] })) {
        order.push([Number(e.key[2]), e.value.at]);
      }
      order.sort((a, b) => a[1]! - b[1]!);
      assert.deepEqual(order.map((o) => o[0]), [0, 1, 2, 3, 4, 5, 6, 7], "processed in queue order across the restart");
    } finally {
      await s.close();
    }
  },
);
