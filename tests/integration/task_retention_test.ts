import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { inBothModes, integration, post, startTestSluice, type TestSluice, waitFor } from "../helpers/sluice.ts";

/** The expiries a stream's events were written with, read from the KV file (`["ev", stream, …]` as KV encodes it). */
function expiries(s: TestSluice, stream: string): number[] {
  const db = new DatabaseSync(`${s.kvDir}/sluice.kv`, { readOnly: true });
  try {
    const prefix = new TextEncoder().encode(`\u0002ev\u0000\u0002${stream}\u0000`);
    const rows = db.prepare("SELECT expiration_ms AS e FROM kv WHERE substr(k, 1, ?) = ?").all(prefix.length, prefix);
    return rows.map((r) => Number(r.e)).filter((e) => e > 0);
  } finally {
    db.close();
  }
}

async function statusOf(s: TestSluice, taskId: string): Promise<string> {
  const res = await s.admin(`/tasks/${taskId}`);
  return res.status === 404 ? (await res.body?.cancel(), "gone") : (await res.json()).status;
}

async function queue(s: TestSluice, token: string, method: string): Promise<string> {
  const res = await post(`${s.url}/channels/blog_queuing/invoke`, token, { method, params: {} });
  const text = await res.text();
  assert.equal(res.status, 202, text);
  return JSON.parse(text).taskId;
}

inBothModes("with TASK_RETENTION a queued task is written to expire after it", async (mode) => {
  const s = await startTestSluice({ ...mode, TASK_RETENTION: "2h" });
  try {
    const token = await s.device("kept-2h");
    const before = Date.now();
    await queue(s, token, "test/echo");
    const [expiry] = await waitFor(() =>
      expiries(s, "t/blog_queuing/kept-2h").length ? expiries(s, "t/blog_queuing/kept-2h") : null
    );
    const after = Date.now();
    assert.ok(expiry! >= before + 7_200_000 && expiry! <= after + 7_200_000, `expires ${expiry! - after} ms on`);
  } finally {
    await s.close();
  }
});

/**
 * Tasks 2 and 3 of a device wait behind task 1's retries (a second apart at first); Sluice stops, the
 * keys of the `gone` tasks are deleted as KV's expiry does, and Sluice starts again.
 */
async function afterExpired(env: Record<string, string>, device = "late", gone = [1, 2]) {
  const withRetries = { ...env, RETRY_BASE_MS: "1000", MAX_ATTEMPTS: "20" };
  const s = await startTestSluice(withRetries);
  const token = await s.device(device);
  const ids = [
    await queue(s, token, "test/fail"),
    await queue(s, token, "test/echo"),
    await queue(s, token, "test/echo"),
  ];
  await waitFor(async () => (await statusOf(s, ids[0]!)) === "retrying" || null, 10_000, "task 1 retrying");
  await s.stop();
  const kv = await Deno.openKv(`${s.kvDir}/sluice.kv`);
  const op = kv.atomic();
  for (const seq of gone) op.delete(["ev", `t/blog_queuing/${device}`, seq]);
  await op.commit();
  kv.close();
  const again = await startTestSluice(withRetries, s.kvDir);
  return { s, again, ids, token };
}

inBothModes(
  "with TASK_RETENTION a lane goes on past tasks that expired before they ran, and counts them",
  async (mode) => {
    const { s, again, ids } = await afterExpired({ ...mode, TASK_RETENTION: "1h" });
    try {
      await waitFor(async () => (await statusOf(again, ids[2]!)) === "done" || null, 10_000, "task 3 done");
      assert.equal(await statusOf(again, ids[0]!), "gone");
      assert.equal(await statusOf(again, ids[1]!), "gone");
      const metrics = await (await fetch(`${again.url}/metrics`)).text();
      assert.match(metrics, /^sluice_tasks_expired_total 2$/m);
    } finally {
      await again.close();
      await s.close();
    }
  },
);

inBothModes("with TASK_RETENTION removed, tasks that expired under it are passed over all the same", async (mode) => {
  // Tasks written while the setting was on keep their expiry: a lane that waited for them wedged for good.
  const { s, again, ids } = await afterExpired(mode);
  try {
    await waitFor(async () => (await statusOf(again, ids[2]!)) === "done" || null, 10_000, "task 3 done");
    const metrics = await (await fetch(`${again.url}/metrics`)).text();
    assert.match(metrics, /^sluice_tasks_expired_total 2$/m);
  } finally {
    await again.close();
    await s.close();
  }
});

inBothModes(
  "with TASK_RETENTION a lane whose every task left expired before it ran moves past them all",
  async (mode) => {
    const { s, again, token } = await afterExpired({ ...mode, TASK_RETENTION: "1h" }, "all-gone", [1, 2, 3]);
    try {
      // Nothing of the stream is kept: the lane still goes past the three (on Deploy it looped on them).
      const metrics = await waitFor(
        async () => {
          const text = await (await fetch(`${again.url}/metrics`)).text();
          return /^sluice_tasks_expired_total 3$/m.test(text) ? text : null;
        },
        10_000,
        "three tasks counted as expired",
      );
      assert.match(metrics, /^sluice_tasks_expired_total 3$/m);
      // A task queued afterwards gets the next seq and runs.
      const next = await queue(again, token, "test/echo");
      await waitFor(async () => (await statusOf(again, next)) === "done" || null, 10_000, "the new task done");
    } finally {
      await again.close();
      await s.close();
    }
  },
);

integration(
  "with TASK_RETENTION tasks queued after a crash and a long outage get seqs past the tasks that ran",
  async () => {
    const s = await startTestSluice({ TASK_RETENTION: "1h" });
    const token = await s.device("crashed");
    const ids = [
      await queue(s, token, "test/echo"),
      await queue(s, token, "test/echo"),
      await queue(s, token, "test/echo"),
    ];
    for (const id of ids) await waitFor(async () => (await statusOf(s, id)) === "done" || null, 10_000, `${id} done`);
    await s.stop();
    // As a kill -9 leaves it (the head key is written at most once a second), then KV's expiry of the three.
    const stream = "t/blog_queuing/crashed";
    const kv = await Deno.openKv(`${s.kvDir}/sluice.kv`);
    await kv.atomic().set(["head", stream], 1).delete(["ev", stream, 1]).delete(["ev", stream, 2])
      .delete(["ev", stream, 3]).commit();
    kv.close();
    const again = await startTestSluice({ TASK_RETENTION: "1h" }, s.kvDir);
    try {
      const next = await queue(again, token, "test/echo");
      assert.ok(!ids.includes(next), `the new task got the id of one that ran: ${next}`);
      await waitFor(async () => (await statusOf(again, next)) === "done" || null, 10_000, "the new task done");
      const res = await again.admin(`/tasks/${next}`);
      assert.ok("result" in (await res.json()), "the new task ran");
    } finally {
      await again.close();
      await s.close();
    }
  },
);
