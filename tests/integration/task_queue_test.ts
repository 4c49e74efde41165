import assert from "node:assert/strict";
import {
  gateIngest,
  inBothModes,
  integration,
  post,
  recordingLogger,
  startTestSluice,
  type TestSluice,
  waitFor,
} from "../helpers/sluice.ts";
import { trueHead } from "../../store/heads.ts";
import { keys } from "../../store/keys.ts";
import { positionalTaskId, positionOfTaskId, subscriberRunId } from "../../core/task_id.ts";

async function invoke(s: TestSluice, token: string, method: string, params: unknown = null, headers = {}) {
  const res = await post(`${s.url}/channels/blog_queuing/invoke`, token, { method, params }, headers);
  const body = await res.json();
  assert.equal(res.status, 202, JSON.stringify(body));
  return body.taskId as string;
}

async function metrics(s: TestSluice): Promise<string> {
  return await (await s.admin("/metrics")).text();
}

async function task(s: TestSluice, id: string) {
  return await (await s.admin(`/tasks/${id}`)).json();
}

function until(s: TestSluice, id: string, status: string, timeoutMs = 10_000) {
  return waitFor(
    async () => {
      const t = await task(s, id);
      return t.status === status ? t : null;
    },
    timeoutMs,
    `task ${id} ${status}`,
  );
}

inBothModes(
  "a script that throws ends up dead after its retries while the device's next task is done",
  async (mode) => {
    const s = await startTestSluice({ ...mode, MAX_ATTEMPTS: "3" });
    try {
      const token = await s.device("d1");
      const bad = await invoke(s, token, "test/fail");
      const next = await invoke(s, token, "test/echo", { n: 2 });
      const dead = await until(s, bad, "dead");
      assert.equal(dead.attempts, 3);
      assert.match(dead.error, /^Deliberate failure \(at tests\/fixtures\/test_scripts\.ts:\d+:\d+\)$/);
      assert.equal(dead.errors.length, 3);
      const done = await until(s, next, "done");
      assert.deepEqual(done.result, { echoed: { n: 2 }, device: "d1", attempt: 1 });
      const letters = await (await s.admin("/admin/dead-letters")).json();
      assert.deepEqual(letters.deadLetters.map((d: { taskId: string }) => d.taskId), [bad]);
    } finally {
      await s.close();
    }
  },
);

integration(
  "a script that throws what cannot be described fails its attempts like any other, and is dead",
  async () => {
    const s = await startTestSluice({ MAX_ATTEMPTS: "2", RETRY_BASE_MS: "50" });
    try {
      const token = await s.device("d-odd");
      const getter = await invoke(s, token, "test/undescribable");
      const proxy = await invoke(s, token, "test/undescribable", { proxy: true });
      const next = await invoke(s, token, "test/echo", { n: 3 });
      for (const id of [getter, proxy]) {
        const dead = await until(s, id, "dead");
        assert.equal(dead.attempts, 2);
        assert.match(
          dead.error,
          /^An error that cannot be described \(reading its message failed\)( \(at tests\/fixtures\/test_scripts\.ts:\d+:\d+\))?$/,
        );
      }
      assert.equal((await until(s, next, "done")).attempts, 1);
      // A public call of it answers as for any other failure.
      const call = await post(`${s.url}/test/undescribable`, token, {});
      assert.equal(call.status, 500);
      assert.match((await call.json()).error.message, /cannot be described/);
    } finally {
      await s.close();
    }
  },
);

integration("only the task a batch is running shows running: the ones after it in the batch are queued", async () => {
  const s = await startTestSluice();
  try {
    const token = await s.device("d-batch");
    // The first holds the lane while the next two queue up: they run as one batch after it.
    const first = await invoke(s, token, "test/slow", { ms: 500, n: 1 });
    await until(s, first, "running");
    const second = await invoke(s, token, "test/slow", { ms: 1500, n: 2 });
    const third = await invoke(s, token, "test/echo", { n: 3 });
    await until(s, second, "running");
    const at = positionOfTaskId(third)!;
    assert.equal(s.server.sluice.runner.inBatch(at.stream, at.seq), "waiting", "in the second's batch");
    assert.equal((await task(s, third)).status, "queued", "waits in the batch behind the second");
    await until(s, third, "done");
  } finally {
    await s.close();
  }
});

inBothModes("later tasks of a device wait while its task is retrying, and run after it succeeds", async (mode) => {
  const s = await startTestSluice({ ...mode, RETRY_BASE_MS: "300", MAX_ATTEMPTS: "5" });
  try {
    const token = await s.device("d2");
    const other = await s.device("d3");
    const flaky = await invoke(s, token, "test/flaky", { failures: 2 });
    const after = await invoke(s, token, "test/echo", { n: 1 });
    const elsewhere = await invoke(s, other, "test/echo", { n: 9 });
    const asked = Date.now();
    const retrying = await until(s, flaky, "retrying");
    assert.equal(retrying.attempts >= 1, true);
    const next = Date.parse(retrying.nextAttemptAt);
    assert.ok(next >= asked - 1000 && next <= Date.now() + 5000, `next attempt at ${retrying.nextAttemptAt}`);
    const waiting = await task(s, after);
    assert.equal(waiting.status, "queued", `the next task of the same device waits: ${JSON.stringify(waiting)}`);
    await until(s, elsewhere, "done"); // other devices are not held up
    const done = await until(s, flaky, "done");
    assert.equal(done.attempts, 3);
    await until(s, after, "done");
  } finally {
    await s.close();
  }
});

inBothModes(
  "a busy-looping script is stopped and dead-lettered at once, not retried, and the server keeps serving",
  async (mode) => {
    const s = await startTestSluice({ ...mode, SCRIPT_TIMEOUT_MS: "200", MAX_ATTEMPTS: "3" });
    try {
      const token = await s.device("d4");
      const busy = await invoke(s, token, "test/busy");
      const health = await fetch(`${s.url}/healthz`);
      assert.equal(health.status, 200);
      await health.body?.cancel();
      const dead = await until(s, busy, "dead", 15_000);
      assert.match(dead.error, /time limit of 200 ms without yielding .*not retried/);
      assert.equal(dead.attempts, 1, "a retry would loop again (and keep another core busy on Deno 2.9)");
      assert.match(await metrics(s), /^sluice_script_runs_total\{method="test\/busy",outcome="timeout"\} 1$/m);
      const ok = await invoke(s, token, "test/echo", { after: "busy" });
      await until(s, ok, "done");
    } finally {
      await s.close();
    }
  },
);

integration(
  "a public script's call cut short by another script's busy loop runs again, and only the loop fails",
  async () => {
    const s = await startTestSluice({ SCRIPT_TIMEOUT_MS: "300", SCRIPT_WORKERS: "1" });
    try {
      const token = await s.device("d4b");
      const busy = post(`${s.url}/test/busy`, token, {});
      await new Promise((r) => setTimeout(r, 50)); // the loop has the only worker
      const echoes = await Promise.all([1, 2, 3].map((n) => post(`${s.url}/test/echo`, token, { n })));
      for (const [i, res] of echoes.entries()) {
        const body = await res.json();
        assert.equal(res.status, 200, JSON.stringify(body));
        assert.deepEqual(body.echoed, { n: i + 1 });
      }
      const looped = await busy;
      assert.equal(looped.status, 500);
      assert.match((await looped.json()).error.message, /time limit of 300 ms/);
    } finally {
      await s.close();
    }
  },
);

inBothModes("a hanging script times out, and a result that is not JSON is dead at once", async (mode) => {
  const s = await startTestSluice({ ...mode, SCRIPT_TIMEOUT_MS: "200", MAX_ATTEMPTS: "1" });
  try {
    const token = await s.device("d5");
    const hang = await invoke(s, token, "test/hang");
    assert.match((await until(s, hang, "dead")).error, /timed out after 200 ms/);
    const text = await metrics(s);
    assert.match(text, /^sluice_script_runs_total\{method="test\/hang",outcome="timeout"\} 1$/m);
    assert.match(text, /^sluice_script_seconds_count\{method="test\/hang",outcome="timeout"\} 1$/m);
  } finally {
    await s.close();
  }
  const again = await startTestSluice({ ...mode, MAX_ATTEMPTS: "5", RETRY_BASE_MS: "10000" });
  try {
    const token = await again.device("d5");
    const dead = await until(again, await invoke(again, token, "test/garbage"), "dead");
    assert.match(dead.error, /not JSON/);
    assert.equal(dead.attempts, 1);
    // Inline, the same result is the script's fault, not the caller's: 500, not 400.
    const res = await post(`${again.url}/test/garbage`, token, {});
    assert.equal(res.status, 500);
    assert.match((await res.json()).error.message, /not JSON/);
  } finally {
    await again.close();
  }
});

inBothModes("a permanent error is dead-lettered at once without retries", async (mode) => {
  const s = await startTestSluice({ ...mode, MAX_ATTEMPTS: "5", RETRY_BASE_MS: "10000" });
  try {
    const token = await s.device("d6");
    const id = await invoke(s, token, "blog/queues/processor", { data: "not,a,reading" });
    const dead = await until(s, id, "dead");
    assert.equal(dead.attempts, 1);
    assert.match(dead.error, /temperature/);
  } finally {
    await s.close();
  }
});

integration("the dead-letter list pages on with next, every dead task once", async () => {
  const s = await startTestSluice();
  try {
    const ids = [];
    for (const d of ["p1", "p2", "p3"]) {
      const id = await invoke(s, await s.device(d), "blog/queues/processor", { data: "not,a,reading" });
      await until(s, id, "dead");
      ids.push(id);
    }
    const seen: string[] = [];
    let url: string | null = "/admin/dead-letters?limit=2";
    const sizes: number[] = [];
    while (url) {
      const page: { deadLetters: { taskId: string }[]; next: string | null } = await (await s.admin(url)).json();
      seen.push(...page.deadLetters.map((d) => d.taskId));
      sizes.push(page.deadLetters.length);
      url = page.next ? `/admin/dead-letters?limit=2&after=${encodeURIComponent(page.next)}` : null;
    }
    assert.deepEqual(sizes, [2, 1]);
    assert.deepEqual(seen, [...ids].sort());
  } finally {
    await s.close();
  }
});

inBothModes("a script's documents, messages and queued tasks land together with its task", async (mode) => {
  const s = await startTestSluice(mode);
  try {
    const token = await s.device("d7");
    const id = await invoke(s, token, "test/effects", { n: 5 });
    const done = await until(s, id, "done");
    const queued = done.result.result.taskId;
    const child = await until(s, queued, "done");
    assert.deepEqual(child.result.echoed, { from: 5 });
    assert.equal(child.device, "d7");
    const again = await invoke(s, token, "test/effects", { n: 6 });
    const second = await until(s, again, "done");
    await until(s, second.result.result.taskId, "done");
    const doc = (await s.server.sluice.kv.get(["doc", "counters", "effects"])).value;
    assert.deepEqual(doc, { n: 6, before: { n: 5, before: null } });
  } finally {
    await s.close();
  }
});

inBothModes("queueing on a channel that does not exist fails the task with a clear error", async (mode) => {
  const s = await startTestSluice({ ...mode, MAX_ATTEMPTS: "1" });
  try {
    const token = await s.device("d8");
    const id = await invoke(s, token, "test/nowhere");
    assert.match((await until(s, id, "dead")).error, /Channel "no_such_channel" does not exist/);
  } finally {
    await s.close();
  }
});

inBothModes("an effect that can never be allowed (publishing on _pumps) makes the task dead at once", async (mode) => {
  const s = await startTestSluice({ ...mode, MAX_ATTEMPTS: "5" });
  try {
    const token = await s.device("d8b");
    const id = await invoke(s, token, "test/forbidden");
    const dead = await until(s, id, "dead");
    assert.match(dead.error, /belongs to Sluice/);
    assert.equal(dead.attempts, 1);
  } finally {
    await s.close();
  }
});

inBothModes(
  "a dead letter retried after the fix runs again at the tail of its stream with its id and receipt time",
  async (mode) => {
    const s = await startTestSluice({ ...mode, MAX_ATTEMPTS: "2" });
    try {
      const token = await s.device("d9");
      const sent = new Date().toISOString();
      const id = await invoke(s, token, "test/fixable");
      await until(s, id, "dead");
      const died = new Date().toISOString();
      await s.server.sluice.kv.set(["doc", "fixes", "fixable"], true); // the fix
      const res = await s.admin(`/admin/dead-letters/${encodeURIComponent(id)}/retry`, { method: "POST" });
      assert.equal(res.status, 202);
      assert.equal((await res.json()).taskId, id);
      const done = await until(s, id, "done");
      assert.equal(done.result.fixedOnAttempt, 1);
      // Run as received then (a reading without a time is stamped with it), not as received at the retry.
      assert.ok(sent <= done.result.receivedAt && done.result.receivedAt <= died, done.result.receivedAt);
      assert.deepEqual((await (await s.admin("/admin/dead-letters")).json()).deadLetters, []);
      const again = await s.admin(`/admin/dead-letters/${encodeURIComponent(id)}/retry`, { method: "POST" });
      assert.equal(again.status, 404);
      await again.body?.cancel();
    } finally {
      await s.close();
    }
  },
);

inBothModes(
  "dead letters retried in bulk run again in their stream's order, a page at a time; one discarded is gone",
  async (mode) => {
    const s = await startTestSluice({ ...mode, MAX_ATTEMPTS: "1" });
    try {
      const a = await s.device("bulk-a"), b = await s.device("bulk-b");
      const ids: string[] = [];
      for (let i = 0; i < 40; i++) ids.push(await invoke(s, a, "test/fixable")); // ids end in base 36: "….10" < "….2"
      const others = [await invoke(s, b, "test/permanent"), await invoke(s, b, "test/permanent")];
      for (const id of [...ids, ...others]) await until(s, id, "dead");
      await s.server.sluice.kv.set(["doc", "fixes", "fixable"], true); // the fix
      const retry = async (body: unknown) => {
        const res = await s.admin("/admin/dead-letters/retry", { method: "POST", body: JSON.stringify(body) });
        assert.equal(res.status, 202);
        const { retried, left, before } = await res.json();
        assert.ok(Date.parse(before) <= Date.now(), before);
        return { retried, left, before };
      };
      const first = await retry({ device: "bulk-a", limit: 15 });
      assert.deepEqual([first.retried, first.left], [15, 25]);
      const rest = await retry({ method: "test/fixable", before: first.before });
      assert.deepEqual([rest.retried, rest.left, rest.before], [25, 0, first.before]);
      for (const id of ids) assert.equal((await until(s, id, "done")).status, "done");
      const seqs = [];
      for (const id of ids) seqs.push((await s.server.sluice.kv.get<{ seq: number }>(keys.taskIndex(id))).value!.seq);
      assert.deepEqual(seqs, Array.from({ length: 40 }, (_, i) => 41 + i), "queued again in their first order");
      const left = async () =>
        (await (await s.admin("/admin/dead-letters")).json()).deadLetters.map((d: { taskId: string }) => d.taskId);
      assert.deepEqual(await left(), [...others].sort());
      const discard = (id: string) => s.admin(`/admin/dead-letters/${encodeURIComponent(id)}`, { method: "DELETE" });
      const gone = await discard(others[0]!);
      assert.equal(gone.status, 204);
      assert.deepEqual(await left(), [others[1]]);
      const again = await discard(others[0]!);
      assert.equal(again.status, 404);
      await again.body?.cancel();
      assert.equal((await task(s, others[0]!)).discarded, true, "a discarded task stays dead, marked so");
      const bad = await s.admin("/admin/dead-letters/retry", { method: "POST", body: '{"limit":0}' });
      assert.equal(bad.status, 400);
      await bad.body?.cancel();
      // Retried, it dies again at once; a later call with the first one's cutoff leaves it alone.
      const once = await retry(undefined);
      assert.deepEqual([once.retried, once.left], [1, 0]);
      await waitFor(async () => (await left()).length === 1, 10_000, "dead again");
      assert.deepEqual((await retry({ before: once.before })).retried, 0);
      assert.deepEqual((await retry({})).retried, 1);
      // A filter naming what is not there is a 404 that says so, not "nothing left" (a known name matching none is 202).
      const typo = await s.admin("/admin/dead-letters/retry", {
        method: "POST",
        body: JSON.stringify({ channel: "blog_queueing", method: "test/fixable" }),
      });
      assert.equal(typo.status, 404);
      assert.match(
        (await typo.json()).error.message,
        /there is no channel "blog_queueing" \(GET \/admin\/dead-letters\)/,
      );
      assert.deepEqual([(await retry({ device: "bulk-a" })).retried, (await retry({ device: "bulk-a" })).left], [0, 0]);
    } finally {
      await s.close();
    }
  },
);

inBothModes(
  "dead letters list by channel, script or device, and are discarded in bulk a page at a time",
  async (mode) => {
    const s = await startTestSluice({ ...mode, MAX_ATTEMPTS: "1" });
    try {
      const a = await s.device("dl-a"), b = await s.device("dl-b");
      const ofA = [await invoke(s, a, "test/permanent"), await invoke(s, a, "test/permanent")];
      const ofB = [await invoke(s, b, "test/permanent"), await invoke(s, b, "test/fixable")];
      for (const id of [...ofA, ...ofB]) await until(s, id, "dead");
      const listed = async (query: string) =>
        (await (await s.admin(`/admin/dead-letters${query}`)).json()).deadLetters.map((d: { taskId: string }) =>
          d.taskId
        );
      assert.deepEqual(await listed("?device=dl-a"), [...ofA].sort());
      assert.deepEqual(await listed("?device=dl-b&method=test/fixable"), [ofB[1]]);
      assert.deepEqual(await listed("?channel=blog_queuing&limit=3"), [...ofA, ...ofB].sort().slice(0, 3));
      const page = await (await s.admin("/admin/dead-letters?device=dl-a&limit=1")).json();
      assert.deepEqual([page.deadLetters.length, page.next], [1, [...ofA].sort()[0]]);
      assert.deepEqual(await listed(`?device=dl-a&after=${encodeURIComponent(page.next)}`), [[...ofA].sort()[1]]);
      const bad = await s.admin("/admin/dead-letters?device=not%20an%20id");
      assert.equal(bad.status, 400);
      await bad.body?.cancel();
      const discard = async (body: unknown) => {
        const res = await s.admin("/admin/dead-letters/discard", { method: "POST", body: JSON.stringify(body) });
        assert.equal(res.status, 200);
        return await res.json();
      };
      const first = await discard({ device: "dl-a", limit: 1 });
      assert.deepEqual([first.discarded, first.left], [1, 1]);
      const rest = await discard({ device: "dl-a", before: first.before });
      assert.deepEqual([rest.discarded, rest.left, rest.before], [1, 0, first.before]);
      assert.deepEqual(await listed(""), [...ofB].sort());
      for (const id of ofA) {
        assert.deepEqual([(await task(s, id)).status, (await task(s, id)).discarded], ["dead", true]);
      }
      const typo = await s.admin("/admin/dead-letters/discard", { method: "POST", body: '{"device":"dl-c"}' });
      assert.equal(typo.status, 404);
      await typo.body?.cancel();
      assert.deepEqual((await discard({})).discarded, 2);
      assert.deepEqual(await listed(""), []);
    } finally {
      await s.close();
    }
  },
);

inBothModes("a bulk retry also takes dead letters a clock that was ahead stamped later than now", async (mode) => {
  const s = await startTestSluice({ ...mode, MAX_ATTEMPTS: "1" });
  try {
    const token = await s.device("ahead-1");
    const id = await invoke(s, token, "test/fixable");
    await until(s, id, "dead");
    const kv = s.server.sluice.kv;
    const letter = (await kv.get<{ deadAt: number }>(keys.deadLetter(id))).value!;
    const deadAt = Date.now() + 3 * 3_600_000; // as stamped before a restart on a clock set 3 h back
    await kv.set(keys.deadLetter(id), { ...letter, deadAt });
    await kv.set(["doc", "fixes", "fixable"], true);
    const res = await s.admin("/admin/dead-letters/retry", { method: "POST", body: "{}" });
    const body = await res.json();
    assert.deepEqual([res.status, body.retried, body.left], [202, 1, 0]);
    assert.ok(Date.parse(body.before) < deadAt, "later calls leave alone what dies again meanwhile");
    assert.equal((await until(s, id, "done")).status, "done");
  } finally {
    await s.close();
  }
});

inBothModes("an Idempotency-Key or body id makes a resend return the first task id and queue nothing", async (mode) => {
  const s = await startTestSluice(mode);
  try {
    const token = await s.device("d10");
    const first = await invoke(s, token, "test/echo", { n: 1 }, { "idempotency-key": "k-1" });
    const again = await post(
      `${s.url}/channels/blog_queuing/invoke`,
      token,
      { method: "test/echo", params: { n: 2 } },
      {
        "idempotency-key": "k-1",
      },
    );
    const body = await again.json();
    assert.equal(again.status, 202);
    assert.deepEqual(body, { taskId: first, duplicate: true });
    const withId = await post(`${s.url}/channels/blog_queuing/invoke`, token, { method: "test/echo", id: "k-1" });
    assert.equal((await withId.json()).taskId, first);
    const clash = await post(`${s.url}/channels/blog_queuing/invoke`, token, { method: "test/echo", id: "a" }, {
      "idempotency-key": "b",
    });
    assert.equal(clash.status, 400);
    await clash.body?.cancel();
    const parallel = await Promise.all(
      Array.from(
        { length: 10 },
        () =>
          post(`${s.url}/channels/blog_queuing/invoke`, token, { method: "test/echo", id: "burst" }).then((r) =>
            r.json()
          ),
      ),
    );
    assert.equal(new Set(parallel.map((p) => p.taskId)).size, 1);
    await until(s, first, "done");
    await s.server.sluice.committer.flush(); // tasks acked from the inbox reach their streams
    const head = await trueHead(s.server.sluice.kv, "t/blog_queuing/d10");
    assert.equal(head, 2, "two distinct ids, two tasks");
  } finally {
    await s.close();
  }
});

inBothModes("channels with ordering none spread a device's tasks over several partitions", async (mode) => {
  const s = await startTestSluice(mode);
  try {
    const token = await s.device("d11");
    const res = await s.admin("/admin/channels", {
      method: "POST",
      body: JSON.stringify({ name: "spread", ordering: "none" }),
    });
    assert.equal(res.status, 201);
    await res.body?.cancel();
    const ids = await Promise.all(
      Array.from(
        { length: 16 },
        (_, n) =>
          post(`${s.url}/channels/spread/invoke`, token, { method: "test/echo", params: { n } })
            .then((r) => r.json()).then((b) => b.taskId as string),
      ),
    );
    const streams = new Set(ids.map((id) => atob(id.split(".")[0]!.replaceAll("-", "+").replaceAll("_", "/"))));
    assert.ok(streams.size >= 4, `expected several partitions, got ${[...streams]}`);
    for (const id of ids) await until(s, id, "done");
  } finally {
    await s.close();
  }
});

inBothModes("scripts that read and write one document from many devices at once lose no update", async (mode) => {
  const s = await startTestSluice(mode);
  try {
    const tokens = await Promise.all(["i1", "i2", "i3", "i4"].map((d) => s.device(d)));
    await Promise.all(tokens.map(async (t) => {
      for (let n = 0; n < 25; n++) await invoke(s, t, "test/increment");
    }));
    const doc = await waitFor(
      async () => {
        const d = (await s.server.sluice.kv.get<{ n: number }>(["doc", "counters", "shared"])).value;
        return d?.n === 100 ? d : null;
      },
      20_000,
      "100 increments",
    );
    assert.equal(doc?.n, 100);
  } finally {
    await s.close();
  }
});

inBothModes("channel stats count queued tasks until they are done", async (mode) => {
  const s = await startTestSluice(mode);
  try {
    const token = await s.device("st");
    for (let n = 0; n < 4; n++) await invoke(s, token, "test/slow", { ms: 150, n });
    const stats = async () => await (await s.admin("/admin/channels/blog_queuing/stats")).json();
    const early = await stats();
    assert.equal(early.partitions, 1);
    assert.ok(early.queued >= 1 && early.queued <= 4, JSON.stringify(early));
    await waitFor(async () => (await stats()).queued === 0, 10_000, "queue drained");
  } finally {
    await s.close();
  }
});

Deno.test("under a burst, tasks run from the inbox before they reach their stream's keys, which they do by themselves", async () => {
  const s = await startTestSluice();
  try {
    const token = await s.device("burst");
    const { committer, kv } = s.server.sluice;
    const ids = await Promise.all(Array.from({ length: 100 }, (_, i) => invoke(s, token, "test/echo", { i })));
    const positions = ids.map((id) => positionOfTaskId(id)!).sort((a, b) => a.seq - b.seq);
    const last = positions.at(-1)!;
    await until(s, positionalTaskId(last.stream, last.seq), "done");
    const held = positions.filter((p) => committer.unmoved(p.stream, p.seq)).length;
    assert.ok(held > 0, "every task had moved before the last one ran: the lanes waited for the moves");
    // No flush: the held-back move lands within about a second.
    await waitFor(() => Promise.resolve(committer.inboxSize === 0), 5_000, "the inbox moved");
    const stored = await kv.getMany(positions.slice(0, 10).map((p) => keys.event(p.stream, p.seq)));
    assert.ok(stored.every((e) => e.versionstamp !== null), "events at their stream's keys");
    assert.equal(await trueHead(kv, last.stream), 100);
  } finally {
    await s.close();
  }
});

Deno.test("one writer runs a device's tasks without reading their stream back from KV", async () => {
  const s = await startTestSluice();
  try {
    const token = await s.device("quiet");
    const first = positionOfTaskId(await invoke(s, token, "test/echo", { n: 0 }))!;
    await until(s, positionalTaskId(first.stream, first.seq), "done");
    // From here on the lane and the writer know the stream: every task comes from memory.
    const kv = s.server.sluice.kv;
    const list = kv.list.bind(kv);
    let reads = 0;
    kv.list = ((selector, options) => {
      const from = "start" in selector ? selector.start : "prefix" in selector ? selector.prefix : [];
      if (from[0] === keys.event(first.stream, 0)[0] && from[1] === first.stream) reads++;
      return list(selector, options);
    }) as typeof kv.list;
    let last = first;
    for (let n = 1; n <= 20; n++) {
      last = positionOfTaskId(await invoke(s, token, "test/echo", { n }))!;
      if (n % 5 === 0) await until(s, positionalTaskId(last.stream, last.seq), "done");
    }
    assert.equal(last.seq, 21);
    assert.equal(reads, 0, "a lane read its stream from KV although the writer knew it was caught up");
  } finally {
    await s.close();
  }
});

Deno.test("one writer accepts a new message id without reading KV, and still answers an id sent before a restart as a duplicate", async () => {
  const s = await startTestSluice();
  try {
    const token = await s.device("ids");
    const dedupReads = () => {
      const kv = s.server.sluice.kv;
      const get = kv.get.bind(kv);
      const count = { n: 0 };
      kv.get = ((key, options) => {
        if (key[0] === keys.dedups()[0]) count.n++;
        return get(key, options);
      }) as typeof kv.get;
      return count;
    };
    let reads = dedupReads();
    const first = await invoke(s, token, "test/echo", { n: 1 }, { "idempotency-key": "before-restart" });
    for (let n = 2; n <= 10; n++) await invoke(s, token, "test/echo", { n }, { "idempotency-key": `new-${n}` });
    assert.equal(reads.n, 0, "a new message id was looked up in KV");
    assert.deepEqual(s.server.sluice.ingest.dedupLookups, { read: 0, skipped: 10 });
    await until(s, first, "done");

    await s.restart();
    reads = dedupReads();
    // The ids stored before are read in after the start; meanwhile every id is looked up in KV.
    let probe = 0;
    await waitFor(async () => {
      await invoke(s, token, "test/echo", null, { "idempotency-key": `probe-${probe++}` });
      return s.server.sluice.ingest.dedupLookups.skipped > 0;
    });
    const readsBefore = reads.n;
    const again = await post(`${s.url}/channels/blog_queuing/invoke`, token, { method: "test/echo" }, {
      "idempotency-key": "before-restart",
    });
    assert.deepEqual(await again.json(), { taskId: first, duplicate: true });
    assert.equal(reads.n, readsBefore + 1, "an id stored before the restart is looked up in KV");
  } finally {
    await s.close();
  }
});

integration(
  "a script that kills every task logs the first ten of a minute one by one, then how many more",
  async () => {
    const log = recordingLogger();
    const s = await startTestSluice({ MAX_ATTEMPTS: "1" }, undefined, { log });
    try {
      const token = await s.device("d-flood");
      const ids: string[] = [];
      for (let i = 0; i < 25; i++) ids.push(await invoke(s, token, "test/fail"));
      await until(s, ids.at(-1)!, "dead");
      await s.stop(); // tells what it held back
      const dead = log.lines.filter((l) => l.includes(" is dead after "));
      assert.equal(dead.length, 10, dead.join("\n"));
      assert.ok(
        log.lines.some((l) => l.includes("15 more task(s) went dead within the minute")),
        log.lines.join("\n"),
      );
    } finally {
      await s.close();
    }
  },
);

integration(
  "a task with big params and long errors ends dead, and the device's next task runs (its dead letter fits a KV value)",
  async () => {
    const s = await startTestSluice({ MAX_ATTEMPTS: "8" });
    try {
      const token = await s.device("big-dead");
      // 40 KB of params and eight errors of 2,000 CJK characters (4 KB each as KV stores them).
      const failing = await invoke(s, token, "test/throws-given", { pad: "a".repeat(40_000), err: "温".repeat(2000) });
      const next = await invoke(s, token, "test/echo", { after: "big" });
      const dead = await until(s, failing, "dead", 20_000);
      assert.equal(dead.attempts, 8);
      assert.ok(dead.errors.length >= 1 && dead.errors.length < 8, `${dead.errors.length} errors kept`);
      assert.equal(dead.errors.at(-1).attempt, 8, "the latest error is kept");
      assert.equal((await until(s, next, "done")).result.echoed.after, "big");
      const letters = await (await s.admin("/admin/dead-letters")).json();
      assert.deepEqual(letters.deadLetters.map((d: { taskId: string }) => d.taskId), [failing]);
    } finally {
      await s.close();
    }
  },
);

integration(
  "a script whose write is over KV's value limit only as KV stores it (two-byte text) is dead at once, with the reason",
  async () => {
    const s = await startTestSluice();
    try {
      const token = await s.device("wide");
      // 32,000 CJK characters: 32 KB as JSON counts them (under the 60 KiB limit), 64 KB as KV stores them.
      const params = { n: 1, text: "温".repeat(16_000), times: 2 };
      const inline = await post(`${s.url}/test/saves-text`, token, params);
      assert.equal(inline.status, 413);
      const reason = /document is \d+ bytes as KV stores it, over the limit of 61440/;
      assert.match((await inline.json()).error.message, reason);
      const dead = await until(s, await invoke(s, token, "test/saves-text", params), "dead");
      assert.equal(dead.attempts, 1, "no attempt can succeed");
      assert.match(dead.error, reason);
      // Half of it fits.
      const done = await until(s, await invoke(s, token, "test/saves-text", { ...params, times: 1 }), "done");
      assert.equal(done.result.saved, 1);
    } finally {
      await s.close();
    }
  },
);

integration(
  "a lane whose batch of writes is over one KV commit runs smaller batches, each script about once",
  async () => {
    const s = await startTestSluice({ SCRIPT_WORKERS: "0" });
    try {
      const token = await s.device("wide-batch");
      const runs = async () => {
        const text = await (await fetch(`${s.url}/metrics`)).text();
        // Every script's runs that ended ok (the series is labelled by outcome, and maybe more).
        return text.split("\n").filter((l) => l.startsWith("sluice_script_runs_total{") && l.includes('outcome="ok"'))
          .reduce((n, l) => n + Number(l.split(" ").at(-1)), 0);
      };
      const before = await runs();
      // The slow task holds the lane while the rest queue up, so they run in batches of 50: each saves
      // 20 KB as KV stores it (10 KB as JSON counts), a batch's writes 1 MB, over a commit's 800 KiB.
      await invoke(s, token, "test/slow", { ms: 1000 });
      const ids = [];
      for (let n = 0; n < 100; n++) {
        ids.push(await invoke(s, token, "test/saves-text", { n, text: "温".repeat(10_000) }));
      }
      for (const id of ids) await until(s, id, "done", 30_000);
      const ran = (await runs()) - before - 1;
      assert.ok(ran >= 100 && ran < 250, `${ran} runs of 100 tasks`);
    } finally {
      await s.close();
    }
  },
);

integration(
  "a bulk retry queues dead tasks again in their first order, also one that died again after a retry",
  async () => {
    const s = await startTestSluice({ MAX_ATTEMPTS: "1" });
    try {
      const token = await s.device("order");
      const ids: string[] = [];
      for (let i = 0; i < 3; i++) ids.push(await invoke(s, token, "test/fixable"));
      for (const id of ids) await until(s, id, "dead");
      // The first is retried alone before the fix: it dies again, further on in the stream.
      await s.admin(`/admin/dead-letters/${encodeURIComponent(ids[0]!)}/retry`, { method: "POST" }).then((r) =>
        r.body?.cancel()
      );
      await waitFor(async () => (await task(s, ids[0]!)).attempts === 1 && (await task(s, ids[0]!)).status === "dead");
      await s.server.sluice.kv.set(["doc", "fixes", "fixable"], true); // the fix
      await s.admin("/admin/dead-letters/retry", { method: "POST", body: "{}" }).then((r) => r.body?.cancel());
      for (const id of ids) await until(s, id, "done");
      const seqs: number[] = [];
      for (const id of ids) seqs.push((await s.server.sluice.kv.get<{ seq: number }>(keys.taskIndex(id))).value!.seq);
      assert.deepEqual(seqs, [5, 6, 7], "queued again as first queued: 1, 2, 3");
    } finally {
      await s.close();
    }
  },
);

integration(
  "a bulk retry keeps the first order of a task a script queued (random id) that died again after a retry",
  async () => {
    const s = await startTestSluice({ MAX_ATTEMPTS: "1" });
    try {
      const token = await s.device("order-r");
      const queuer = await invoke(s, token, "test/queues-fixable");
      const queued = (await until(s, queuer, "done")).result.result.taskId as string; // seq 2, before the next
      assert.match(queued, /^r\./);
      const positional = await invoke(s, token, "test/fixable"); // seq 3
      for (const id of [queued, positional]) await until(s, id, "dead");
      await s.admin(`/admin/dead-letters/${queued}/retry`, { method: "POST" }).then((r) => r.body?.cancel());
      await waitFor(async () => {
        const t = await task(s, queued);
        return t.status === "dead" && t.attempts === 1 && (await s.server.sluice.kv.get(keys.deadLetter(queued))).value;
      });
      await s.server.sluice.kv.set(["doc", "fixes", "fixable"], true); // the fix
      await s.admin("/admin/dead-letters/retry", { method: "POST", body: JSON.stringify({ device: "order-r" }) })
        .then((r) => r.body?.cancel());
      for (const id of [queued, positional]) await until(s, id, "done");
      const seqs: number[] = [];
      for (const id of [queued, positional]) {
        seqs.push((await s.server.sluice.kv.get<{ seq: number }>(keys.taskIndex(id))).value!.seq);
      }
      assert.ok(seqs[0]! < seqs[1]!, `the script's task (first queued) goes back first: ${seqs}`);
    } finally {
      await s.close();
    }
  },
);

integration(
  "a bulk retry orders runs of topic messages by their message, also those that died in _retry before",
  async () => {
    const s = await startTestSluice();
    try {
      await s.admin("/admin/channels", { method: "POST", body: JSON.stringify({ name: "old-runs" }) });
      // Two runs that died again in _retry, recorded as an older Sluice did (without firstSeq): the run of
      // message 5 died there first, the run of message 3 after it.
      const dead = (message: number, retrySeq: number) => ({
        taskId: subscriberRunId("m/old-runs", message, "test/echo"),
        stream: "t/old-runs/_retry",
        consumer: "tasks",
        seq: retrySeq,
        method: "test/echo",
        params: { message },
        device: null,
        attempts: 1,
        errors: [{ attempt: 1, at: 0, error: "x" }],
        deadAt: 1,
      });
      const letters = [dead(5, 1), dead(3, 2)];
      for (const d of letters) await s.server.sluice.kv.set(keys.deadLetter(d.taskId), d);
      const res = await s.admin("/admin/dead-letters/retry", { method: "POST", body: "{}" });
      assert.equal((await res.json()).retried, 2);
      const seqOf = async (id: string) =>
        (await s.server.sluice.kv.get<{ seq: number }>(keys.taskIndex(id))).value!.seq;
      const [five, three] = [await seqOf(letters[0]!.taskId), await seqOf(letters[1]!.taskId)];
      assert.ok(three < five, `message 3's run goes back before message 5's: ${three}, ${five}`);
    } finally {
      await s.close();
    }
  },
);

integration(
  "a script that meddles with its worker cannot crash Sluice, skew later results, or have others blamed",
  async () => {
    const log = recordingLogger();
    const s = await startTestSluice({ SCRIPT_WORKERS: "1", SCRIPT_TIMEOUT_MS: "10000", MAX_ATTEMPTS: "1" }, undefined, {
      log,
    });
    try {
      const meddle = async (device: string, act: string) =>
        await until(
          s,
          await invoke(s, await s.device(device), "test/meddles", { act }),
          act === "post" ? "dead" : "done",
        );
      // Its postMessage is refused to it (what reached the pool that way took the whole process down).
      assert.match((await meddle("m-post", "post")).error, /Scripts cannot post messages/);
      // A replaced JSON.parse does not reach the next run's result.
      await meddle("m-json", "json");
      const echoed = await until(s, await invoke(s, await s.device("m-next"), "test/echo", { n: 1 }), "done");
      assert.deepEqual(echoed.result.echoed, { n: 1 });
      // Its close() of the worker (here in a timer, after its run) throws: logged, and the worker goes on.
      await meddle("m-close", "close");
      for (let i = 0; i < 100 && !log.lines.some((l) => l.includes("Scripts cannot call close")); i++) {
        await new Promise((r) => setTimeout(r, 20));
      }
      assert.ok(log.lines.some((l) => l.includes("Scripts cannot call close")), log.lines.join("\n"));
      const after = await until(s, await invoke(s, await s.device("m-after"), "test/echo", { n: 2 }), "done", 9000);
      assert.equal(after.attempts, 1);
      assert.ok(!log.lines.some((l) => l.includes("stopped answering")), log.lines.join("\n"));
      assert.equal((await fetch(`${s.url}/healthz`)).status, 200);
    } finally {
      await s.close();
    }
  },
);

inBothModes("a lane whose read fails once tries again by itself a second later", async (mode) => {
  const log = recordingLogger();
  const s = await startTestSluice(mode, undefined, { log });
  try {
    const token = await s.device("flaky-kv");
    // The lane's first read of its state fails, as a KV busy for a moment would: the batched read of its cursor, and
    // the read of that key alone that follows a failed batch (not the task view's own read of it, which polls).
    const kv = s.server.sluice.kv;
    const [getMany, get] = [kv.getMany.bind(kv), kv.get.bind(kv)];
    const isCursor = (k: Deno.KvKey) =>
      k[0] === "cur" && String(k[2]).includes("flaky-kv") && !!new Error().stack?.includes("read_batcher.ts");
    let failures = 0;
    kv.getMany = ((keyList: Deno.KvKey[], options?: { consistency?: Deno.KvConsistencyLevel }) => {
      if (failures === 0 && keyList.some(isCursor)) {
        failures++;
        return Promise.reject(new Error("database is locked"));
      }
      return getMany(keyList, options);
    }) as typeof kv.getMany;
    kv.get = ((key: Deno.KvKey, options?: { consistency?: Deno.KvConsistencyLevel }) => {
      if (failures === 1 && isCursor(key)) {
        failures++;
        return Promise.reject(new Error("database is locked"));
      }
      return get(key, options);
    }) as typeof kv.get;
    const done = await until(s, await invoke(s, token, "test/echo", { n: 1 }), "done", 5000);
    assert.equal(done.attempts, 1);
    assert.ok(failures >= 1, "the lane's read failed (its batch, and its key read alone when it shared the batch)");
    assert.ok(
      log.lines.some((l) => /failed \(database is locked\); trying again in 1 s/.test(l)),
      log.lines.join("\n"),
    );
  } finally {
    await s.close();
  }
});

inBothModes(
  "a run may write to at most 90 pumps, queues and topics: over it, the task is dead at once in both modes",
  async (mode) => {
    const s = await startTestSluice({ ...mode, MAX_ATTEMPTS: "5", RETRY_BASE_MS: "10000" });
    try {
      const token = await s.device("wide");
      const coordinates = { lat: 45.5, lon: -73.5 };
      const reading = { temperature: 20, pressure: 1, coordinates, time: new Date().toISOString() };
      const fits = await until(s, await invoke(s, token, "test/records-wide", { reading, pumps: 90 }), "done");
      assert.deepEqual(fits.result, { pumps: 90 });
      const over = await until(s, await invoke(s, token, "test/records-wide", { reading, pumps: 91 }), "dead");
      assert.equal(over.attempts, 1);
      assert.match(over.error, /A run may write to at most 90 pumps, task queues and topics .* this one has 91/);
    } finally {
      await s.close();
    }
  },
);
inBothModes(
  "a done task's result survives a restart in deploy mode, where the next poll may reach another instance",
  async (mode) => {
    const s = await startTestSluice(mode);
    try {
      const id = await invoke(s, await s.device("kept"), "test/echo", { n: 7 });
      assert.deepEqual((await until(s, id, "done")).result.echoed, { n: 7 });
      await s.restart();
      const after = await task(s, id);
      assert.equal(after.status, "done");
      if (mode.SLUICE_MODE === "deploy") assert.deepEqual(after.result?.echoed, { n: 7 });
      else assert.equal(after.result, undefined, "one process keeps results in memory only");
    } finally {
      await s.close();
    }
  },
);

integration(
  "a task Sluice keeps dying in counts a failed attempt a start, then is dead and its lane goes on",
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "sluice-died-" });
    const env = { SCRIPT_TIMEOUT_MS: "60000", MAX_ATTEMPTS: "2", RETRY_BASE_MS: "50" };
    let s = await startTestSluice(env, dir);
    try {
      const token = await s.device("doomed");
      const doomed = await invoke(s, token, "test/hang"); // the run the process dies in, every time
      const next = await invoke(s, token, "test/echo", { n: 1 });
      // Three crashes while it runs: the first is not seen (nothing was marked), the next two count.
      for (let crash = 1; crash <= 3; crash++) {
        await waitFor(async () => (await task(s, doomed)).status === "running", 10_000, `run before crash ${crash}`);
        await s.server.close({ abandon: true });
        await s.close();
        s = await startTestSluice(env, dir);
      }
      const dead = await until(s, doomed, "dead");
      assert.equal(dead.attempts, 2);
      assert.match(dead.error, /Sluice stopped dead while this task ran/);
      assert.deepEqual((await until(s, next, "done")).result.echoed, { n: 1 });
      // A graceful stop while a resumed task runs is no crash: nothing is counted after it.
      assert.equal((await s.server.sluice.kv.get(keys.runMarker("t/blog_queuing/doomed"))).value, null);
    } finally {
      await s.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
);

inBothModes("a batch of big results is kept within its commit: every task runs once", async (mode) => {
  const s = await startTestSluice(mode);
  try {
    const token = await s.device("big-results");
    const text = "x".repeat(15_000); // echoed back: a result of 15 KB, under the 16 KiB kept with a task
    const gate = gateIngest(s);
    const sent = Array.from({ length: 50 }, (_, n) => invoke(s, token, "test/echo", { n, text }));
    await waitFor(() => gate.entered === 50, 10_000, "50 invokes at the gate");
    gate.open(); // the 50 tasks land together: one batch
    const ids = await Promise.all(sent);
    for (const id of ids) assert.equal((await until(s, id, "done")).attempts, 1);
    const metrics = await (await fetch(`${s.url}/metrics`)).text();
    assert.match(metrics, /sluice_script_runs_total\{[^}]*outcome="ok"[^}]*\} 50\b/, "each ran once");
  } finally {
    await s.close();
  }
});
