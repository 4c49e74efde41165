import assert from "node:assert/strict";
import { keys } from "../../store/keys.ts";
import { SWEEP_WAVE } from "../../engine/partition_runner.ts";
import { ADMIN, inBothModes, integration, post, startTestSluice, waitFor } from "../helpers/sluice.ts";

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

integration(
  "a start with more streams behind than SWEEP_WAVE drains at most SWEEP_WAVE of them at once, and all of them",
  async () => {
    const s = await startTestSluice({ SCRIPT_TIMEOUT_MS: "10000" });
    try {
      const streams = SWEEP_WAVE + 60;
      const ids: string[] = [];
      const tokens = await Promise.all(Array.from({ length: streams }, (_, i) => s.device(`wave-${i}`)));
      for (const [i, token] of tokens.entries()) {
        // A long run cut by the stop, and one queued behind it: every stream is behind at the next start.
        for (const ms of [3000, 10]) {
          const res = await post(`${s.url}/channels/blog_queuing/invoke`, token, {
            method: "test/slow",
            params: { ms, n: i },
          });
          assert.equal(res.status, 202);
          ids.push((await res.json()).taskId);
        }
      }
      await s.restart();
      const runner = s.server.sluice.runner;
      let most = 0;
      const sampler = setInterval(() => most = Math.max(most, runner.draining), 5);
      try {
        await waitFor(
          async () => {
            const statuses = await Promise.all(
              ids.map(async (id) => (await (await s.admin(`/tasks/${id}`)).json()).status),
            );
            return statuses.every((status) => status === "done");
          },
          60_000,
          "every task done",
        );
      } finally {
        clearInterval(sampler);
      }
      assert.ok(most <= SWEEP_WAVE, `${most} lanes drained at once`);
      assert.ok(most > SWEEP_WAVE / 2, `the sweep drained in waves of up to ${SWEEP_WAVE} (most at once: ${most})`);
    } finally {
      await s.close();
    }
  },
);
