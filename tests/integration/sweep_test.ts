import assert from "node:assert/strict";
import { keys } from "../../store/keys.ts";
import { ADMIN, inBothModes, post, startTestSluice, waitFor } from "../helpers/sluice.ts";

inBothModes(
  "the sweep (start-up, Deploy's cron) resumes only lanes behind their head, subscriber scripts' included",
  async (mode) => {
    const s = await startTestSluice(mode);
    try {
      const created = await post(`${s.url}/admin/channels`, ADMIN, { name: "swept", subscribers: ["test/increment"] });
      assert.equal(created.status, 201);
      await created.body?.cancel();
      const token = await s.device("sweeper");
      for (let n = 0; n < 3; n++) {
        const res = await post(`${s.url}/channels/swept/messages`, token, { n });
        assert.equal(res.status, 202);
        await res.body?.cancel();
      }
      const task = await (await post(`${s.url}/channels/blog_queuing/invoke`, token, {
        method: "test/echo",
        params: { n: 1 },
      })).json();
      await waitFor(
        async () => {
          const shared = await s.server.sluice.kv.get<{ n: number }>(keys.document("counters", "shared"));
          const done = (await (await s.admin(`/tasks/${task.taskId}`)).json()).status === "done";
          return done && shared.value?.n === 3;
        },
        30_000,
        "the subscriber script and the task done",
      );
      // Every lane is at its head: a sweep has nothing to resume (the cron's "resumed N" line stays quiet).
      assert.equal(await s.server.sluice.runner.sweep(), 0);
      assert.equal(await s.server.sluice.runner.sweep(true), 0);
    } finally {
      await s.close();
    }
  },
);
