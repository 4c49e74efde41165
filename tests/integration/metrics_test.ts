import assert from "node:assert/strict";
import { integration, post, startTestSluice, waitFor } from "../helpers/sluice.ts";

integration("/metrics counts ingest, runs, commits and queue depth in Prometheus text", async () => {
  const s = await startTestSluice();
  try {
    const token = await s.device("m1");
    for (let n = 0; n < 5; n++) {
      await post(`${s.url}/channels/blog_queuing/invoke`, token, { method: "test/echo", params: { n } }).then((r) =>
        r.json()
      );
    }
    await post(`${s.url}/channels/nope/invoke`, token, { method: "test/echo" }).then((r) => r.json());
    await post(`${s.url}/channels/blog_queuing/invoke`, token, '{"method":').then((r) => r.json());
    await post(`${s.url}/channels/blog_queuing/messages`, "sl_not-a-token", { a: 1 }).then((r) => r.json());
    const feed = { temperature: "20", pressure: "1", coordinates: "45.5:-73.5", time: "2026-11-25T10:00:00Z" };
    await post(`${s.url}/blog/queues/feed`, token, feed).then((r) => r.json()); // a public script, run inline
    const text = await waitFor(async () => {
      const t = await (await fetch(`${s.url}/metrics`)).text();
      // The queue gauges are read at most once a second: they show the done tasks within it.
      return t.includes("sluice_tasks_done_total 6") && t.includes('sluice_queue_depth{channel="blog_queuing"} 0')
        ? t
        : null;
    });
    assert.match(text, /sluice_ingest_total\{protocol="http",kind="invoke"\} 5/);
    assert.match(text, /sluice_ingest_refused_total\{protocol="http",code="not_found"\} 1/);
    assert.match(text, /sluice_ingest_refused_total\{protocol="http",code="malformed_json"\} 1/);
    assert.match(text, /sluice_ingest_refused_total\{protocol="http",code="unauthorized"\} 1/);
    assert.match(text, /sluice_ingest_seconds_bucket\{protocol="http",le="\+Inf"\} 5/);
    assert.match(text, /sluice_kv_commit_requests_count \d+/);
    assert.match(text, /sluice_script_runs_total\{method="test\/echo",outcome="ok"\} 5/);
    assert.match(text, /sluice_script_runs_total\{method="blog\/queues\/feed",outcome="ok"\} 1/);
    assert.match(text, /# TYPE sluice_script_seconds histogram/);
  } finally {
    await s.close();
  }
});

integration("/metrics needs METRICS_TOKEN when it is set", async () => {
  const s = await startTestSluice({ METRICS_TOKEN: "scrape-me" });
  try {
    const open = await fetch(`${s.url}/metrics`);
    assert.equal(open.status, 401);
    await open.body?.cancel();
    const ok = await fetch(`${s.url}/metrics`, { headers: { authorization: "Bearer scrape-me" } });
    assert.equal(ok.status, 200);
    assert.match(await ok.text(), /sluice_process_resident_bytes/);
  } finally {
    await s.close();
  }
});
