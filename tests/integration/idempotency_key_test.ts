import assert from "node:assert/strict";
import { integration, post, startTestSluice } from "../helpers/sluice.ts";

integration(
  "a bad Idempotency-Key is refused and counted as a refused message on every route that takes one",
  async () => {
    const s = await startTestSluice();
    try {
      const token = await s.device("keyed");
      const key = { "idempotency-key": "k".repeat(201) };
      const routes: [string, unknown][] = [
        ["/channels/blog_queuing/invoke", {
          method: "blog/queues/processor",
          params: { data: "1,1,1:1,2026-11-25T10:00:00Z" },
        }],
        ["/channels/blog_queuing/messages", { hello: 1 }],
        ["/blog/queues/feed", { temperature: 1, pressure: 1, coordinates: "1:1", time: "2026-11-25T10:00:00Z" }],
      ];
      for (const [path, body] of routes) {
        const res = await post(`${s.url}${path}`, token, body, key);
        const answer = await res.json();
        assert.equal(res.status, 400, `${path}: ${JSON.stringify(answer)}`);
        assert.equal(answer.error.code, "validation_failed");
        assert.match(answer.error.message, /[Ii]dempotency-[Kk]ey|Message id/);
      }
      const metrics = await (await s.admin("/metrics")).text();
      assert.match(metrics, /sluice_ingest_refused_total\{protocol="http",code="validation_failed"\} 3\n/);
      const doc = await (await fetch(`${s.url}/openapi.json`)).json();
      const params = doc.paths["/channels/{ch}/invoke"].post.parameters as { name: string; in: string }[];
      assert.ok(params.some((p) => p.in === "header" && p.name.toLowerCase() === "idempotency-key"), "documented");
    } finally {
      await s.close();
    }
  },
);

integration(
  "an Idempotency-Key with bytes outside ASCII is refused, so it cannot match another id given in a body",
  async () => {
    const s = await startTestSluice();
    try {
      const token = await s.device("keyed");
      const invoke = (id?: string) => ({
        method: "blog/queues/processor",
        params: { data: "1,1,1:1,2026-11-25T10:00:00Z" },
        ...(id === undefined ? {} : { id }),
      });
      // "k-ü" sent as UTF-8: a header value reaches Sluice one character a byte, "k-Ã¼".
      const utf8Key = { "idempotency-key": "k-\u00c3\u00bc" };
      const res = await post(`${s.url}/channels/blog_queuing/invoke`, token, invoke(), utf8Key);
      const answer = await res.json();
      assert.equal(res.status, 400, JSON.stringify(answer));
      assert.equal(answer.error.code, "validation_failed");
      assert.match(answer.error.message, /ASCII/);
      // The id it would have been read as is still free, and "k-ü" in a body is an id of its own.
      for (const id of ["k-\u00c3\u00bc", "k-ü"]) {
        const sent = await post(`${s.url}/channels/blog_queuing/invoke`, token, invoke(id));
        const body = await sent.json();
        assert.equal(sent.status, 202, JSON.stringify(body));
        assert.equal(body.duplicate, undefined);
      }
      const ascii = await post(`${s.url}/channels/blog_queuing/invoke`, token, invoke(), { "idempotency-key": "k 1" });
      assert.equal(ascii.status, 202);
      await ascii.body?.cancel();
    } finally {
      await s.close();
    }
  },
);
