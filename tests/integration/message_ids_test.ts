import assert from "node:assert/strict";
import { inBothModes, post, startTestSluice } from "../helpers/sluice.ts";

const READING = "20,1,1:1,2026-11-25T10:00:00Z";

inBothModes("message ids with lone surrogates are refused: KV would store them all as one id", async (env) => {
  const s = await startTestSluice(env);
  try {
    const token = await s.device("surrogates");
    const url = `${s.url}/channels/blog_queuing/invoke`;
    // KV writes a lone surrogate as U+FFFD, so these three ids would share one dedup key: with
    // several writers the second was answered as a duplicate of the first and never queued.
    for (const id of ["a\ud800", "a\udc00", "\udfff"]) {
      const res = await post(url, token, { method: "blog/queues/processor", params: { data: READING }, id });
      const body = await res.json();
      assert.equal(res.status, 400, `id ${JSON.stringify(id)}: ${JSON.stringify(body)}`);
      assert.equal(body.error.code, "validation_failed");
      assert.match(body.error.message, /\bid\b.*Unicode/);
    }
    const fine = await post(url, token, { method: "blog/queues/processor", params: { data: READING }, id: "a\ufffd" });
    assert.equal(fine.status, 202, await fine.text());
  } finally {
    await s.close();
  }
});

inBothModes(
  "one message id sent at once as a task and as a topic message: one is taken, the other refused",
  async (env) => {
    const s = await startTestSluice(env);
    try {
      const token = await s.device("racer");
      for (let i = 0; i < 5; i++) {
        const key = { "idempotency-key": `both-${i}` };
        const task = { method: "blog/queues/processor", params: { data: READING } };
        const answers = await Promise.all([
          post(`${s.url}/channels/blog_queuing/invoke`, token, task, key),
          post(`${s.url}/channels/blog_queuing/messages`, token, { reading: i }, key),
        ]);
        const bodies = await Promise.all(answers.map((r) => r.json()));
        const statuses = answers.map((r) => r.status).sort();
        // The second used to join the first's commit and get its answer: 500 "Ingest answered an
        // invoke for a publish" over HTTP, and a success reply for a message never published over WebSocket.
        assert.deepEqual(statuses, [202, 400], JSON.stringify(bodies));
        const refused = bodies[answers.findIndex((r) => r.status === 400)];
        assert.equal(refused.error.code, "validation_failed");
        assert.match(refused.error.message, /already used for another kind of message/);
      }
    } finally {
      await s.close();
    }
  },
);
