import assert from "node:assert/strict";
import { UnavailableError } from "../../core/errors.ts";
import type { WriteRequest } from "../../store/committer.ts";
import { AMQP_URL, amqpClient, amqpReady, csvInvoke, readings } from "../helpers/amqp.ts";
import { integration, post, startTestSluice, waitFor } from "../helpers/sluice.ts";

integration(
  "a lane whose writes KV refuses (a full disk) waits ever longer, wake-ups or not, spends no attempt, then goes on",
  async () => {
    const s = await startTestSluice({ RETRY_BASE_MS: "200" });
    try {
      const committer = s.server.sluice.committer;
      const write = committer.write.bind(committer);
      let full = true;
      // KV refuses the lanes' writes (background work) as the committer says of a full disk; acks still land.
      committer.write = (req: WriteRequest) =>
        full && !req.urgent
          ? Promise.reject(new UnavailableError("KV refused the write: database or disk is full"))
          : write(req);
      const token = await s.device("df1");
      const invoke = () => post(`${s.url}/channels/blog_queuing/invoke`, token, { method: "test/echo", params: {} });
      const res = await invoke();
      assert.equal(res.status, 202);
      const { taskId } = await res.json();
      // More tasks for the same lane meanwhile: each wakes it, and none may cut its wait short.
      for (let n = 0; n < 5; n++) {
        await new Promise((r) => setTimeout(r, 250));
        assert.equal((await invoke()).status, 202);
      }
      await new Promise((r) => setTimeout(r, 250));
      const runs = s.server.sluice.runner.stats.batches;
      assert.ok(runs >= 2 && runs <= 5, `ran ${runs} batches in 1.5 s (tried again after 200, 400, 800 ms)`);

      full = false;
      let task: { status?: string; attempts?: number } = {};
      for (let n = 0; n < 100 && task.status !== "done"; n++) {
        await new Promise((r) => setTimeout(r, 50));
        task = await (await s.admin(`/tasks/${taskId}`)).json();
      }
      // Its next try comes within 1.6 s; KV's refusals were no fault of the task: no attempt spent.
      assert.deepEqual([task.status, task.attempts], ["done", 1]);
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
      const set = kv.set.bind(kv);
      const diskFull = () => Promise.reject(new TypeError("database or disk is full"));
      kv.atomic = () => {
        const op = atomic();
        if (full) op.commit = diskFull;
        return op;
      };
      kv.set = (...args: Parameters<Deno.Kv["set"]>) => full ? diskFull() : set(...args);
      const invoke = () => post(`${s.url}/channels/blog_queuing/invoke`, token, { method: "test/echo", params: {} });
      const refused = await invoke();
      assert.equal(refused.status, 503);
      assert.equal(refused.headers.get("retry-after"), "1");
      assert.deepEqual((await refused.json()).error, {
        code: "unavailable",
        message: "KV refused the write: database or disk is full",
      });
      const health = await fetch(`${s.url}/healthz`);
      assert.equal(health.status, 503);
      assert.equal((await health.json()).checks.kv, "degraded");
      const device = await s.admin("/admin/devices", { method: "POST", body: '{"id":"df3"}' }); // a direct write
      assert.deepEqual([device.status, (await device.json()).error.code], [503, "unavailable"]);
      assert.equal(device.headers.get("retry-after"), "1");

      // Room again, and nothing sent: /healthz itself finds out with a small write (at most every 2 s).
      full = false;
      let healthy = { status: 0, kv: "" };
      for (let n = 0; n < 40 && healthy.status !== 200; n++) {
        await new Promise((r) => setTimeout(r, 100));
        const res = await fetch(`${s.url}/healthz`);
        healthy = { status: res.status, kv: (await res.json()).checks.kv };
      }
      assert.deepEqual(healthy, { status: 200, kv: "ok" });
      const taken = await invoke();
      assert.equal(taken.status, 202, await taken.text());
    } finally {
      await s.close();
    }
  },
);

integration(
  "an AMQP message KV cannot take yet is taken again in place and not counted as refused; a bad one still is",
  async () => {
    const amqp = await amqpClient();
    const s = await startTestSluice({ AMQP_URL });
    try {
      await amqpReady(s);
      const token = await s.device("df-amqp");
      const committer = s.server.sluice.committer;
      const write = committer.write.bind(committer);
      let refusals = 3;
      // KV refuses the first acks as the committer says of a full disk, then takes them.
      committer.write = (req: WriteRequest) =>
        req.urgent && refusals > 0
          ? (refusals--, Promise.reject(new UnavailableError("KV refused the write: database or disk is full")))
          : write(req);
      await amqp.publish(`${token}/blog_queuing/invoke`, csvInvoke(1), { messageId: "full-1" });
      await amqp.publish(`${token}/no_such_channel/invoke`, csvInvoke(2), { messageId: "bad-1" });
      await readings(s, "df-amqp", 1);
      assert.equal(refusals, 0);
      const text = await (await fetch(`${s.url}/metrics`)).text();
      assert.doesNotMatch(text, /sluice_ingest_refused_total\{protocol="amqp",code="unavailable"\}/);
      assert.match(text, /sluice_ingest_refused_total\{protocol="amqp",code="not_found"\} 1/);
    } finally {
      await amqp.close();
      await s.close();
    }
  },
);

integration(
  "under KV_MIN_FREE_MB of free disk a message is answered 503 unavailable and /healthz says kv degraded",
  async () => {
    // A margin no disk here has: the disk counts as nearly full.
    const s = await startTestSluice({ KV_MIN_FREE_MB: "1000000" });
    try {
      const token = await s.device("df-room");
      const res = await post(`${s.url}/channels/blog_queuing/invoke`, token, { method: "test/echo", params: {} });
      assert.equal(res.status, 503);
      assert.equal(res.headers.get("retry-after"), "1");
      const { error } = await res.json();
      assert.equal(error.code, "unavailable");
      assert.match(
        error.message,
        /the disk is nearly full \([\d.]+ MiB free in .*, under the 1000000 MiB KV_MIN_FREE_MB/,
      );
      const health = await fetch(`${s.url}/healthz`);
      assert.equal(health.status, 503);
      assert.equal((await health.json()).checks.kv, "degraded");
    } finally {
      await s.close();
    }
  },
);

integration(
  "once KV takes writes again, a lane waiting out its refusals runs at once, not at the end of its wait",
  async () => {
    // A first wait of 20 s: the task must be done long before it is over.
    const s = await startTestSluice({ RETRY_BASE_MS: "20000" });
    try {
      const token = await s.device("df-again");
      const kv = s.server.sluice.kv;
      const atomic = kv.atomic.bind(kv);
      let full = false;
      kv.atomic = () => {
        const op = atomic();
        if (full) op.commit = () => Promise.reject(new TypeError("database or disk is full"));
        return op;
      };
      const invoke = (params: unknown) =>
        post(`${s.url}/channels/blog_queuing/invoke`, token, { method: "test/slow", params });
      const res = await invoke({ ms: 500, n: 1 });
      assert.equal(res.status, 202);
      const { taskId } = await res.json();
      full = true; // while the script runs: its results cannot be written
      await waitFor(() => s.server.sluice.runner.stats.batches >= 1, 5000, "the run to end");
      await new Promise((r) => setTimeout(r, 300));
      full = false;
      const resumedAt = Date.now();
      // Any write that lands (here the next message's ack) says KV takes writes again.
      assert.equal((await invoke({ ms: 1, n: 2 })).status, 202);
      await waitFor(
        async () => (await (await s.admin(`/tasks/${taskId}`)).json()).status === "done",
        5000,
        "the first task done",
      );
      assert.ok(Date.now() - resumedAt < 5000);
    } finally {
      await s.close();
    }
  },
);

integration(
  "a message within MAX_BODY_BYTES that KV would store over its 64 KiB (two-byte text) is refused (413) saying why",
  async () => {
    const s = await startTestSluice();
    try {
      await s.admin("/admin/channels", { method: "POST", body: JSON.stringify({ name: "notes" }) });
      const token = await s.device("writer");
      // One character beyond U+00FF makes V8 store the whole string at 2 bytes a character.
      const fits = await post(`${s.url}/channels/notes/messages`, token, JSON.stringify("a".repeat(32_000) + "€"));
      assert.equal(fits.status, 202, await fits.text());
      const over = await post(`${s.url}/channels/notes/messages`, token, JSON.stringify("a".repeat(33_000) + "€"));
      const answer = await over.json();
      assert.equal(over.status, 413, JSON.stringify(answer));
      assert.equal(answer.error.code, "payload_too_large");
      assert.match(answer.error.message, /^Message is 3300\d bytes, but \d+ as KV stores it, over the 64512 .*U\+00FF/);
    } finally {
      await s.close();
    }
  },
);
