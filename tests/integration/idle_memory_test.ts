import assert from "node:assert/strict";
import { integration, post, startTestSluice, type TestSluice, waitFor } from "../helpers/sluice.ts";

async function invoke(s: TestSluice, token: string, method: string, params: unknown = null): Promise<string> {
  const res = await post(`${s.url}/channels/blog_queuing/invoke`, token, { method, params });
  const body = await res.json();
  assert.equal(res.status, 202, JSON.stringify(body));
  return body.taskId;
}

const statusOf = async (s: TestSluice, id: string) => (await (await s.admin(`/tasks/${id}`)).json()).status;
const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

integration(
  "devices that sent once and went quiet keep no lane or head in memory for good, and pick up where they left off",
  async () => {
    // Once 8 lanes or heads are kept, those idle for 200 ms are forgotten (the defaults: 10,000 lanes and 20,000 heads,
    // idle for 10 minutes).
    const s = await startTestSluice({}, undefined, { idleMemory: { from: 8, afterMs: 200 } });
    try {
      const { runner, committer } = s.server.sluice;
      const tokens = await Promise.all(Array.from({ length: 70 }, (_, i) => s.device(`churn-${i}`)));
      const first = await Promise.all(tokens.slice(0, 30).map((t, n) => invoke(s, t, "test/echo", { n })));
      for (const id of first) await waitFor(async () => (await statusOf(s, id)) === "done", 10_000, `task ${id}`);
      assert.ok(runner.lanes >= 16, `${runner.lanes} lanes: 30 devices in a burst, none idle yet`);
      // The KV queue's copy of the last wake-ups goes with the next commit that wakes a lane, and makes those lanes
      // again when it arrives (to find them caught up): one more device sends, and the lanes go idle again after.
      await pause(300);
      const flush = await invoke(s, await s.device("flusher"), "test/echo");
      await waitFor(async () => (await statusOf(s, flush)) === "done", 10_000, "the flushing task");
      await pause(1000);
      // 40 new devices: the lanes and heads of the 30 idle ones are forgotten as the new ones come.
      const later = await Promise.all(tokens.slice(30).map((t, n) => invoke(s, t, "test/echo", { n: 30 + n })));
      for (const id of later) await waitFor(async () => (await statusOf(s, id)) === "done", 10_000, `task ${id}`);
      assert.ok(runner.lanes <= 44, `${runner.lanes} lanes kept of 71, 30 of them idle`);
      assert.ok(committer.heads <= 44, `${committer.heads} heads kept of 71 streams, 30 of them idle`);
      // A forgotten device sends again: its next task runs once, after its first (which does not run again).
      const again = await invoke(s, tokens[0]!, "test/echo", { n: "again" });
      await waitFor(async () => (await statusOf(s, again)) === "done", 10_000, "the task after the lane was forgotten");
      const [one, two] = await Promise.all(
        [first[0]!, again].map(async (id) => await (await s.admin(`/tasks/${id}`)).json()),
      );
      assert.deepEqual([one.attempts, two.attempts], [1, 1]);
      assert.deepEqual(two.result.echoed, { n: "again" });
      const runs = /sluice_script_runs_total\{method="test\/echo",outcome="ok"\} (\d+)/.exec(
        await (await s.admin("/metrics")).text(),
      )?.[1];
      assert.equal(runs, "72", "every task ran once");
    } finally {
      await s.close();
    }
  },
);

// (A lane waiting for a retry is kept, but one forgotten would be made again by the next wake-up that names its stream,
// the KV queue's delayed one for the retry included: that rule has no test of its own.)
integration("a task waiting for its retry gets it while idle lanes are forgotten around it", async () => {
  const s = await startTestSluice({ RETRY_BASE_MS: "4000" }, undefined, { idleMemory: { from: 4, afterMs: 0 } });
  try {
    const waiting = await s.device("retrier");
    const id = await invoke(s, waiting, "test/flaky", { failures: 1 });
    await waitFor(async () => (await statusOf(s, id)) === "retrying", 10_000, "the retry");
    // More lanes come and go meanwhile; each one made forgets the idle ones (idle for 0 ms here).
    const tokens = await Promise.all(Array.from({ length: 13 }, (_, i) => s.device(`passer-${i}`)));
    const passing = await Promise.all(tokens.slice(0, 12).map((t) => invoke(s, t, "test/echo")));
    for (const p of passing) await waitFor(async () => (await statusOf(s, p)) === "done", 10_000, "a passing task");
    await invoke(s, tokens[12]!, "test/echo");
    assert.ok(s.server.sluice.runner.lanes < 14, `${s.server.sluice.runner.lanes} lanes kept of 14`);
    await waitFor(async () => (await statusOf(s, id)) === "done", 15_000, "the retried task");
    assert.equal((await (await s.admin(`/tasks/${id}`)).json()).attempts, 2);
  } finally {
    await s.close();
  }
});

integration("a server gone quiet forgets its idle lanes and heads without waiting for new devices", async () => {
  const s = await startTestSluice({}, undefined, { idleMemory: { from: 8, afterMs: 200 } });
  try {
    const { runner, committer } = s.server.sluice;
    const tokens = await Promise.all(Array.from({ length: 30 }, (_, i) => s.device(`quiet-${i}`)));
    const ids = await Promise.all(tokens.map((t, n) => invoke(s, t, "test/echo", { n })));
    for (const id of ids) await waitFor(async () => (await statusOf(s, id)) === "done", 10_000, `task ${id}`);
    assert.ok(runner.lanes >= 16 && committer.heads >= 16, `${runner.lanes} lanes, ${committer.heads} heads`);
    // Nothing more comes: the timers look all the same.
    await waitFor(() => runner.lanes < 8 && committer.heads < 8, 10_000, "the idle lanes and heads forgotten");
  } finally {
    await s.close();
  }
});
