import assert from "node:assert/strict";
import { SseClient, WsClient } from "../helpers/clients.ts";
import { brokerUrl, connectDevice } from "../helpers/mqtt.ts";
import { connectPacket } from "../helpers/mqtt_raw.ts";
import { ADMIN, integration, post, startTestSluice, waitFor } from "../helpers/sluice.ts";

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
    await post(`${s.url}/blog/queues/feed`, token, '{"temp').then((r) => r.json()); // refused before it runs
    const text = await waitFor(async () => {
      const t = await (await fetch(`${s.url}/metrics`)).text();
      // The queue gauges are read at most once a second: they show the done tasks within it.
      return t.includes("sluice_tasks_done_total 6") && t.includes('sluice_queue_depth{channel="blog_queuing"} 0')
        ? t
        : null;
    });
    assert.match(text, /sluice_ingest_total\{protocol="http",kind="invoke"\} 5/);
    assert.match(text, /sluice_ingest_refused_total\{protocol="http",code="not_found"\} 1/);
    assert.match(text, /sluice_ingest_refused_total\{protocol="http",code="malformed_json"\} 2/);
    assert.match(text, /sluice_ingest_total\{protocol="http",kind="script"\} 1/);
    assert.match(text, /sluice_script_call_seconds_count\{protocol="http"\} 1/);
    assert.match(text, /sluice_ingest_refused_total\{protocol="http",code="unauthorized"\} 1/);
    assert.match(text, /sluice_ingest_seconds_bucket\{protocol="http",le="\+Inf"\} 5/);
    assert.match(text, /sluice_kv_commit_requests_count \d+/);
    assert.match(text, /sluice_script_runs_total\{method="test\/echo",outcome="ok"\} 5/);
    assert.match(text, /sluice_script_runs_total\{method="blog\/queues\/feed",outcome="ok"\} 1/);
    assert.match(text, /# TYPE sluice_script_seconds histogram/);
    // A scraper (the simulators) tells a restart, whose counters start again from zero, by it.
    const started = Number(/^process_start_time_seconds (\d+)$/m.exec(text)?.[1]);
    assert.ok(Math.abs(started - Date.now() / 1000) < 600, `process_start_time_seconds ${started}`);
    const data = Number(/^sluice_kv_file_bytes\{file="data"\} (\d+)$/m.exec(text)?.[1]);
    const onDisk = (await Deno.stat(`${s.kvDir}/sluice.kv`)).size;
    assert.ok(data > 0 && data <= onDisk, `sluice_kv_file_bytes{file="data"} ${data}, the file ${onDisk} bytes`);
    assert.match(text, /^sluice_kv_file_bytes\{file="wal"\} \d+$/m);
  } finally {
    await s.close();
  }
});

integration("/metrics gives no KV file size when the KV is in memory", async () => {
  const s = await startTestSluice({ KV_PATH: ":memory:" });
  try {
    const text = await (await fetch(`${s.url}/metrics`)).text();
    assert.match(text, /sluice_pumps 0/);
    assert.doesNotMatch(text, /sluice_kv_file_bytes/);
  } finally {
    await s.close();
  }
});

integration("/metrics needs METRICS_TOKEN when it is set", async () => {
  const s = await startTestSluice({ METRICS_TOKEN: "scrape-me-scrape-me" });
  try {
    const open = await fetch(`${s.url}/metrics`);
    assert.equal(open.status, 401);
    await open.body?.cancel();
    const ok = await fetch(`${s.url}/metrics`, { headers: { authorization: "Bearer scrape-me-scrape-me" } });
    assert.equal(ok.status, 200);
    assert.match(await ok.text(), /sluice_process_resident_bytes/);
  } finally {
    await s.close();
  }
});

integration(
  "/metrics counts a WebSocket frame that carries a message when it is refused, not a session frame",
  async () => {
    const s = await startTestSluice();
    try {
      const ws = await WsClient.connect(`${s.url}/ws`);
      ws.socket.send("not json");
      assert.equal((await ws.request("Publish", { channel: "nope", message: 1 })).status, "failure");
      assert.equal((await ws.request("blog/queues/feed", { temperature: 1 })).status, "failure"); // needs a device
      assert.equal((await ws.request("Subscribe", { channel: "nope" })).status, "failure");
      await ws.close();
      const text = await (await fetch(`${s.url}/metrics`)).text();
      assert.match(text, /sluice_ingest_refused_total\{protocol="ws",code="malformed_json"\} 1/);
      assert.match(text, /sluice_ingest_refused_total\{protocol="ws",code="not_found"\} 1/);
      assert.match(text, /sluice_ingest_refused_total\{protocol="ws",code="unauthorized"\} 1/);
    } finally {
      await s.close();
    }
  },
);

integration("/metrics shows how far behind each subscriber script of a topic is", async () => {
  const s = await startTestSluice({ MAX_ATTEMPTS: "100" });
  try {
    const created = await s.admin("/admin/channels", {
      method: "POST",
      body: JSON.stringify({ name: "alerts", subscribers: ["test/fail", "test/echo"] }),
    });
    assert.equal(created.status, 201, await created.text());
    for (let n = 0; n < 3; n++) {
      const res = await post(`${s.url}/channels/alerts/messages`, ADMIN, { n });
      assert.equal(res.status, 202, await res.text());
    }
    await waitFor(async () => {
      const t = await (await fetch(`${s.url}/metrics`)).text();
      return /sluice_subscriber_behind\{channel="alerts",script="test\/fail"\} 3/.test(t) &&
        /sluice_subscriber_behind\{channel="alerts",script="test\/echo"\} 0/.test(t);
    });
  } finally {
    await s.close();
  }
});

integration("/metrics puts wrong tokens under the same slow-down as every other route", async () => {
  const s = await startTestSluice({ METRICS_TOKEN: "scrape-me-scrape-me" });
  try {
    const scrape = async () => {
      const t0 = performance.now();
      const res = await fetch(`${s.url}/metrics`, { headers: { authorization: "Bearer sla_guess" } });
      await res.body?.cancel();
      assert.equal(res.status, 401);
      return performance.now() - t0;
    };
    for (let n = 0; n < 10; n++) await scrape(); // the first ten failures of a minute are free
    assert.ok(await scrape() >= 90, "the eleventh wrong token is answered after a delay");
  } finally {
    await s.close();
  }
});

integration("every counter and histogram is named in /metrics before its first event", async () => {
  const s = await startTestSluice();
  try {
    const text = await (await fetch(`${s.url}/metrics`)).text();
    for (
      const name of [
        "sluice_ingest_refused_total",
        "sluice_script_call_seconds",
        "sluice_dead_letters_total",
        "sluice_topic_subscribers_cut_off_total",
      ]
    ) {
      assert.match(text, new RegExp(`^# HELP ${name} `, "m"), name);
      assert.match(text, new RegExp(`^# TYPE ${name} `, "m"), name);
    }
    assert.doesNotMatch(text, /^sluice_ingest_refused_total\{/m, "no sample yet");
    // Counters of rare events that have no label, or a known few, start at 0: an alert on increase() sees the first.
    for (
      const series of [
        "sluice_http_requests_refused_total",
        "sluice_mqtt_queue_dropped_total",
        'sluice_topic_subscribers_cut_off_total{protocol="ws"}',
        'sluice_topic_subscribers_cut_off_total{protocol="sse"}',
      ]
    ) assert.ok(text.split("\n").includes(`${series} 0`), series);
  } finally {
    await s.close();
  }
});

integration(
  "an MQTT-over-WebSocket client that never answers the close frame stays counted (and capped) until its socket goes",
  async () => {
    const s = await startTestSluice({ MQTT_PORT: "0" });
    const tcp = await Deno.connect({ hostname: "127.0.0.1", port: Number(new URL(s.url).port) });
    try {
      const mqttCount = async () =>
        Number(/^sluice_connections\{protocol="mqtt"\} (\d+)$/m.exec(await (await s.admin("/metrics")).text())![1]);
      const text = new TextEncoder();
      await tcp.write(text.encode(
        "GET /mqtt HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
          "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n",
      ));
      // A CONNECT with a wrong password, in one masked binary frame (mask 0: the payload as it is).
      const connect = connectPacket({ username: "nobody", password: "wrong" });
      await tcp.write(new Uint8Array([0x82, 0x80 | connect.length, 0, 0, 0, 0, ...connect]));
      // Read until the server's close frame (opcode 8) comes, after its CONNACK; never answer it.
      const seen: number[] = [];
      const buf = new Uint8Array(4096);
      await waitFor(
        async () => {
          const n = await tcp.read(buf);
          if (n === null) throw new Error("the server dropped the socket");
          seen.push(...buf.subarray(0, n));
          const headers = new TextDecoder().decode(new Uint8Array(seen)).indexOf("\r\n\r\n");
          return headers >= 0 && seen.slice(headers + 4).includes(0x88); // a frame byte of opcode 8, FIN set
        },
        15_000,
        "the server's close frame",
      );
      await new Promise((r) => setTimeout(r, 300)); // a release at the close would have come by now
      assert.equal(await mqttCount(), 1, "its socket is still open: it still counts");
      tcp.close();
      await waitFor(async () => (await mqttCount()) === 0, 10_000, "released once the client's socket is gone");
    } finally {
      try {
        tcp.close();
      } catch { /* closed */ }
      await s.close();
    }
  },
);

integration("sluice_connections counts the WebSocket, SSE and MQTT connections open now, by protocol", async () => {
  const s = await startTestSluice({ MQTT_PORT: "0" });
  try {
    const token = await s.device("c1");
    const connections = async () => {
      const text = await (await s.admin("/metrics")).text();
      return Object.fromEntries(
        [...text.matchAll(/^sluice_connections\{protocol="(\w+)"\} (\d+)$/gm)].map((m) => [m[1], Number(m[2])]),
      );
    };
    assert.deepEqual(await connections(), { ws: 0, sse: 0, mqtt: 0 });
    const ws = await WsClient.connect(`${s.url.replace(/^http/, "ws")}/ws?token=${token}`);
    const sse = await SseClient.open(`${s.url}/channels/blog_queuing/events?token=${token}`);
    const device = await connectDevice(brokerUrl(s), "c1", token);
    await waitFor(async () => JSON.stringify(await connections()) === '{"ws":1,"sse":1,"mqtt":1}', 5_000, "1 each");
    await Promise.all([ws.close(), sse.close(), device.endAsync()]);
    await waitFor(async () => JSON.stringify(await connections()) === '{"ws":0,"sse":0,"mqtt":0}', 5_000, "0 each");
  } finally {
    await s.close();
  }
});
