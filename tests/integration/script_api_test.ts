import assert from "node:assert/strict";
import { integration, post, startTestSluice, type TestSluice, waitFor } from "../helpers/sluice.ts";

async function invoke(s: TestSluice, token: string, method: string, params: unknown = null) {
  const res = await post(`${s.url}/channels/blog_queuing/invoke`, token, { method, params });
  const body = await res.json();
  assert.equal(res.status, 202, JSON.stringify(body));
  return body.taskId as string;
}

function settled(s: TestSluice, id: string) {
  return waitFor(
    async () => {
      const t = await (await s.admin(`/tasks/${encodeURIComponent(id)}`)).json();
      return t.status === "done" || t.status === "dead" ? t : null;
    },
    15_000,
    `task ${id} done or dead`,
  );
}

integration("a run reads back the documents it saved or deleted itself, and only its last write lands", async () => {
  const s = await startTestSluice();
  try {
    const token = await s.device("rw1");
    const expected = { before: null, saved: { n: 1 }, savedTwice: { n: 2 }, deleted: null };
    const inline = await post(`${s.url}/test/rereads`, token, { id: "inline" });
    assert.deepEqual(await inline.json(), expected);
    const queued = await settled(s, await invoke(s, token, "test/rereads-queued", { id: "queued" }));
    assert.deepEqual([queued.status, queued.result], ["done", expected]);
    for (const id of ["inline", "queued"]) {
      assert.equal((await s.server.sluice.kv.get(["doc", "rereads", id])).value, null, `${id} was deleted`);
      assert.deepEqual((await s.server.sluice.kv.get(["doc", "rereads", `${id}-kept`])).value, { n: 2 });
    }
  } finally {
    await s.close();
  }
});

integration(
  "a task that succeeds on a retry with a result too big to keep in KV is done, its writes landed",
  async () => {
    const s = await startTestSluice({ MAX_ATTEMPTS: "3" });
    try {
      const token = await s.device("big1");
      const id = await invoke(s, token, "test/big-after-retry", { bytes: 100_000 });
      const t = await settled(s, id);
      assert.equal(t.status, "done", JSON.stringify(t).slice(0, 500));
      assert.equal(t.attempts, 2);
      assert.equal(t.result.text.length, 100_000, "the result is still shown while it is in memory");
      assert.deepEqual((await s.server.sluice.kv.get(["doc", "big-after-retry", id])).value, { attempt: 2 });
      // After a restart the attempts are still known; the result was too big to keep.
      await s.restart();
      const again = await (await s.admin(`/tasks/${id}`)).json();
      assert.deepEqual([again.status, again.attempts, again.result], ["done", 2, undefined]);
    } finally {
      await s.close();
    }
  },
);

integration("a thrown error's cause is shown with its message, to the caller and in the dead letter", async () => {
  const s = await startTestSluice({ MAX_ATTEMPTS: "1" });
  try {
    const token = await s.device("cause1");
    const res = await post(`${s.url}/test/cause`, token, {});
    assert.equal(res.status, 500);
    const message = "Could not read the gateway's reading (cause: Bad CSV on line 2)";
    // Followed by where the script threw it, its file named from Sluice's folder.
    const at = / \(at tests\/fixtures\/test_scripts\.ts:\d+:\d+\)$/;
    const answer: string = (await res.json()).error.message;
    assert.match(answer, at);
    assert.equal(answer.replace(at, ""), `Script "test/cause" failed: ${message}`);
    const t = await settled(s, await invoke(s, token, "test/cause"));
    assert.equal(t.status, "dead");
    assert.match(t.error, at);
    assert.equal(t.error.replace(at, ""), message);
  } finally {
    await s.close();
  }
});

integration(
  "a run that writes more than one KV commit holds is told so, with the figures, and at once past its limit",
  async () => {
    const s = await startTestSluice();
    try {
      const token = await s.device("writer");
      // Past the limit (990 writes): refused at the call after it, however many more the script meant (not held in memory).
      const many = await post(`${s.url}/test/queues-many`, token, { n: 300_000 });
      const manyBody = await many.json();
      assert.equal(many.status, 400, JSON.stringify(manyBody));
      assert.match(manyBody.error.message, /^This run wrote more than \d+ times .* split the work across runs/);
      // Fewer, but still too many for one commit: said at the commit, with the count.
      const some = await post(`${s.url}/test/queues-many`, token, { n: 600 });
      const someBody = await some.json();
      assert.equal(some.status, 413, JSON.stringify(someBody));
      assert.match(
        someBody.error.message,
        /^Too many writes for one commit: \d+ KV mutations .* over the \d+ one commit/,
      );
      // Within it: every task queued.
      const fine = await post(`${s.url}/test/queues-many`, token, { n: 300 });
      assert.deepEqual(await fine.json(), { queued: 300 });
    } finally {
      await s.close();
    }
  },
);

/** The first dead letter `match` finds, waited for. */
function deadLetter(
  s: TestSluice,
  match: (d: { method: string; taskId: string }) => boolean,
  what: string,
  // deno-lint-ignore no-explicit-any
): Promise<any> {
  return waitFor(
    async () => (await (await s.admin("/admin/dead-letters")).json()).deadLetters.find(match),
    20_000,
    what,
  );
}

integration("a script that queues itself is stopped by MAX_CHAIN_WORK with a dead letter that says Loop?", async () => {
  const s = await startTestSluice({ MAX_CHAIN_WORK: "20" });
  try {
    const token = await s.device("looper");
    await invoke(s, token, "test/queues-itself", { n: 1 });
    const dead = await deadLetter(s, (d) => d.method === "test/queues-itself", "the loop's dead letter");
    assert.equal(dead.budget, 1, "the 20th run of the chain had nothing left to give");
    assert.equal(dead.attempts, 1, "dead at once: no attempt can pass");
    assert.match(dead.errors[0].error, /^Loop\? This run would queue or publish 1 more, past the 20 script runs/);
    const runs = async (outcome: string) =>
      new RegExp(`sluice_script_runs_total\\{method="test/queues-itself",outcome="${outcome}"\\} (\\d+)`).exec(
        await (await s.admin("/metrics")).text(),
      )?.[1];
    assert.equal(await runs("ok"), "20", "the device's task and the 19 it chained");
    // A retry from the dead letters keeps what its chain had left: it fails again at once, and starts no loop.
    const retried = await s.admin(`/admin/dead-letters/${dead.taskId}/retry`, { method: "POST" });
    assert.equal(retried.status, 202);
    await retried.body?.cancel();
    await waitFor(async () => (await runs("ok")) === "21", 10_000, "the retry's run");
    await deadLetter(s, (d) => d.taskId === dead.taskId, "dead again");
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(await runs("ok"), "21", "no loop started again");
  } finally {
    await s.close();
  }
});

integration("two subscribers that publish back on their own channel stop within MAX_CHAIN_WORK runs each", async () => {
  const s = await startTestSluice({ MAX_CHAIN_WORK: "30" });
  try {
    const body = { name: "echoes", subscribers: ["test/publishes-back", "test/publishes-back-too"] };
    assert.equal((await s.admin("/admin/channels", { method: "POST", body: JSON.stringify(body) })).status, 201);
    const token = await s.device("shouter");
    assert.equal((await post(`${s.url}/channels/echoes/messages`, token, { hello: 1 })).status, 202);
    // Each message is run by both: without a bound on the whole of it, the messages double at every turn.
    const messages = async () => (await (await s.admin("/admin/channels/echoes/stats")).json()).messages;
    const dead = await deadLetter(s, (d) => d.method.startsWith("test/publishes-back"), "a dead letter of the loop");
    assert.match(dead.errors[0].error, /^Loop\? This run would (queue or publish 1 more|publish on echoes)/);
    await waitFor(
      async () => {
        const stats = await (await s.admin("/admin/channels/echoes/stats")).json();
        return stats.subscribers.every((sub: { behind: number }) => sub.behind === 0);
      },
      20_000,
      "both subscribers caught up",
    );
    const settled = await messages();
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(await messages(), settled, "the loop stopped");
    // The device's message and at most 30 runs of each subscriber's, each publishing one.
    assert.ok(settled <= 61, `${settled} messages`);
  } finally {
    await s.close();
  }
});
