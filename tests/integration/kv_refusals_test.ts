import assert from "node:assert/strict";
import type { WriteRequest } from "../../store/committer.ts";
import { integration, post, startTestSluice } from "../helpers/sluice.ts";

integration(
  "a lane whose writes KV refuses (a full disk) waits ever longer instead of running its tasks again at once, then goes on",
  async () => {
    const s = await startTestSluice({ RETRY_BASE_MS: "200" });
    try {
      const committer = s.server.sluice.committer;
      const write = committer.write.bind(committer);
      let full = true;
      // KV refuses the lanes' writes (background work) as SQLite does on a full disk; acks still land.
      committer.write = (req: WriteRequest) =>
        full && !req.urgent ? Promise.reject(new TypeError("database or disk is full")) : write(req);
      const token = await s.device("df1");
      const res = await post(`${s.url}/channels/blog_queuing/invoke`, token, { method: "test/echo", params: {} });
      assert.equal(res.status, 202);
      const { taskId } = await res.json();
      await new Promise((r) => setTimeout(r, 1500));
      const runs = s.server.sluice.runner.stats.batches;
      assert.ok(runs >= 2 && runs <= 6, `ran ${runs} batches in 1.5 s (tried again after 200, 400, 800 ms)`);

      full = false;
      let status = "";
      for (let n = 0; n < 100 && status !== "done"; n++) {
        await new Promise((r) => setTimeout(r, 50));
        status = (await (await s.admin(`/tasks/${taskId}`)).json()).status;
      }
      // Its next try comes after at most 1.6 s; the attempt that KV refused counted as failed.
      assert.equal(status, "done");
    } finally {
      await s.close();
    }
  },
);

integration(
  "while KV refuses writes (a full disk) a message is answered 503 unavailable and /healthz says kv degraded, until writes land again",
  async () => {
    const s = await startTestSluice();
    try {
      const token = await s.device("df2");
      const kv = s.server.sluice.kv;
      const atomic = kv.atomic.bind(kv);
      let full = true;
      kv.atomic = () => {
        const op = atomic();
        if (full) op.commit = () => Promise.reject(new TypeError("database or disk is full"));
        return op;
      };
      const invoke = () => post(`${s.url}/channels/blog_queuing/invoke`, token, { method: "test/echo", params: {} });
      const refused = await invoke();
      assert.equal(refused.status, 503);
      assert.deepEqual((await refused.json()).error, {
        code: "unavailable",
        message: "KV refused the write: database or disk is full",
      });
      const health = await fetch(`${s.url}/healthz`);
      assert.equal(health.status, 503);
      assert.equal((await health.json()).checks.kv, "degraded");
      const device = await s.admin("/admin/devices", { method: "POST", body: '{"id":"df3"}' }); // a direct write
      assert.deepEqual([device.status, (await device.json()).error.code], [503, "unavailable"]);

      full = false;
      const taken = await invoke();
      assert.equal(taken.status, 202, await taken.text());
      const healthy = await fetch(`${s.url}/healthz`);
      assert.deepEqual([healthy.status, (await healthy.json()).checks.kv], [200, "ok"]);
    } finally {
      await s.close();
    }
  },
);
