import assert from "node:assert/strict";
import { inBothModes, integration, post, recordingLogger, startTestSluice, waitFor } from "../helpers/sluice.ts";

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
          params: { ms: n === 0 ? 1500 : 150, n },
        });
        slow.push((await res.json()).taskId);
      }
      // Stop while one of them runs with others queued behind it. (Waiting for the first to run raced the posts on a
      // loaded machine: it could be done before they were, and never show "running".)
      await waitFor(
        async () => {
          const st = await Promise.all(slow.map(async (id) => (await (await s.admin(`/tasks/${id}`)).json()).status));
          return st.includes("running") && st.lastIndexOf("queued") > st.indexOf("running");
        },
        10_000,
        "a slow task running with others queued behind it",
      );
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

inBothModes(
  "a start resumes only the streams with work left: subscriber scripts that are done are not woken or counted",
  async (mode) => {
    const log = recordingLogger();
    const s = await startTestSluice(mode, undefined, { log });
    try {
      const created = await s.admin("/admin/channels", {
        method: "POST",
        body: JSON.stringify({ name: "done_feed", subscribers: ["test/increment", "test/echo"] }),
      });
      assert.equal(created.status, 201);
      for (let n = 1; n <= 3; n++) {
        assert.equal(
          (await s.admin("/channels/done_feed/messages", { method: "POST", body: `{"n":${n}}` })).status,
          202,
        );
      }
      await waitFor(
        async () => {
          const stats = await (await s.admin("/admin/channels/done_feed/stats")).json();
          return stats.subscribers.every((sub: { done: number; behind: number }) => sub.done === 3 && sub.behind === 0);
        },
        30_000,
        "both subscribers to run the 3 messages",
      );

      await s.restart();
      assert.deepEqual(
        log.lines.filter((l) => l.includes("Resuming queued work")),
        [],
        "nothing was left to do, so the start says it resumes nothing",
      );
      assert.equal(await s.server.sluice.runner.sweep(), 0, "a sweep (Deploy's cron every minute) finds nothing to do");

      // Those lanes still wake for what comes next.
      assert.equal((await s.admin("/channels/done_feed/messages", { method: "POST", body: `{"n":4}` })).status, 202);
      await waitFor(
        async () => {
          const stats = await (await s.admin("/admin/channels/done_feed/stats")).json();
          return stats.subscribers.every((sub: { done: number; behind: number }) => sub.done === 4 && sub.behind === 0);
        },
        10_000,
        "both subscribers to run the 4th message",
      );
    } finally {
      await s.close();
    }
  },
);

integration(
  "a stop does not wait out a long script run: it is cut after a grace, not counted, and runs again after the start",
  async () => {
    const s = await startTestSluice({ SCRIPT_TIMEOUT_MS: "20000" });
    try {
      const token = await s.device("long-1");
      const queue = async (ms: number) =>
        (await (await post(`${s.url}/channels/blog_queuing/invoke`, token, {
          method: "test/slow",
          params: { ms, n: ms },
        })).json()).taskId as string;
      const long = await queue(8000);
      const after = await queue(10);
      await waitFor(
        async () => (await (await s.admin(`/tasks/${long}`)).json()).status === "running",
        30_000,
        "the long run to start",
      );
      await new Promise((r) => setTimeout(r, 300));
      const started = performance.now();
      await s.server.close();
      const took = performance.now() - started;
      // main.ts exits 1 ("Stop took over 5 s") past 5 s; it waited for the run: 8 s.
      assert.ok(took < 3500, `the stop took ${Math.round(took)} ms`);
      await s.restart(); // on the same KV (the server closed above stays closed)
      const done = await waitFor(
        async () => {
          const task = await (await s.admin(`/tasks/${long}`)).json();
          return task.status === "done" && task;
        },
        20_000,
        "the long run to run again and finish",
      );
      assert.equal(done.attempts, 1, "the run cut by the stop is not counted as a failed attempt");
      await waitFor(async () => (await (await s.admin(`/tasks/${after}`)).json()).status === "done");
    } finally {
      await s.close();
    }
  },
);
