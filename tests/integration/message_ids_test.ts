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
