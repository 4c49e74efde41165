import assert from "node:assert/strict";
import { loadConfig } from "../../config.ts";
import { MAX_STREAMS_PER_DEVICE } from "../../core/device_streams.ts";
import { silentLogger } from "../../core/log.ts";
import { sseAdapter } from "../../protocols/sse/adapter.ts";
import { startServer } from "../../server.ts";
import { openSluice } from "../../sluice.ts";
import { testManifest } from "../fixtures/manifest.ts";
import { SseClient, WsClient } from "../helpers/clients.ts";
import { ADMIN, integration, post, startTestSluice, waitFor } from "../helpers/sluice.ts";

/** The status line of a WebSocket upgrade asked over a raw connection. */
async function upgradeStatus(url: string, path: string): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: Number(new URL(url).port) });
  try {
    await conn.write(new TextEncoder().encode(
      `GET ${path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    ));
    const buf = new Uint8Array(1024);
    const n = await conn.read(buf);
    return new TextDecoder().decode(buf.subarray(0, n ?? 0)).split("\r\n")[0]!;
  } finally {
    conn.close();
  }
}

integration(
  "a device holds at most 100 streams, WebSocket and SSE together; the next waits until one closes, and is counted and logged",
  async () => {
    const warnings: string[] = [];
    const s = await startTestSluice({}, undefined, { log: { ...silentLogger, warn: (line) => warnings.push(line) } });
    const open: { close(): Promise<unknown> }[] = [];
    try {
      const res = await s.admin("/admin/channels", { method: "POST", body: JSON.stringify({ name: "lim" }) });
      assert.equal(res.status, 201, await res.text());
      const token = await s.device("greedy");
      const events = `${s.url}/channels/lim/events?token=${token}`;
      for (let i = 1; i < MAX_STREAMS_PER_DEVICE; i++) {
        const sse = await SseClient.open(events);
        assert.equal(sse.response.status, 200);
        open.push(sse);
      }
      const ws = await WsClient.connect(`${s.url}/ws?token=${token}`);
      open.push(ws);
      assert.equal(s.server.sluice.deviceStreams.held("greedy"), MAX_STREAMS_PER_DEVICE);

      const refused = await fetch(events);
      assert.equal(refused.status, 429);
      assert.match((await refused.json()).error.message, /"greedy" already holds 100 open streams/);
      assert.equal(await upgradeStatus(s.url, `/ws?token=${token}`), "HTTP/1.1 429 Too Many Requests");
      // A connection without a token may open, but cannot become the device's 101st stream.
      const late = await WsClient.connect(`${s.url}/ws`);
      open.push(late);
      const auth = await late.request("Authenticate", { token });
      assert.equal(auth.status, "failure");
      assert.equal((auth.error as { code: string }).code, "rate_limited");
      assert.match(await (await fetch(`${s.url}/metrics`)).text(), /^sluice_device_connections_refused_total 3$/m);
      assert.equal(
        warnings.filter((w) => w === 'Device "greedy" holds 100 connections (WebSocket, SSE, MQTT): refusing more')
          .length,
        3,
      );
      // Another device is not held back.
      const other = await SseClient.open(`${s.url}/channels/lim/events?token=${await s.device("modest")}`);
      open.push(other);
      assert.equal(other.response.status, 200);

      await open.shift()!.close(); // one SSE stream ends: a slot is free again
      await waitFor(() => s.server.sluice.deviceStreams.held("greedy") === MAX_STREAMS_PER_DEVICE - 1);
      assert.equal((await late.request("Authenticate", { token })).status, "success");
      await ws.close();
      await waitFor(() => s.server.sluice.deviceStreams.held("greedy") === MAX_STREAMS_PER_DEVICE - 1);
      const again = await SseClient.open(events);
      open.push(again);
      assert.equal(again.response.status, 200);
      await post(`${s.url}/channels/lim/messages`, token, { n: 1 });
      await waitFor(() => again.events.length === 1);
    } finally {
      for (const c of open) await c.close();
      await s.close();
    }
  },
);

integration(
  "a stream's slot comes back however it ends: HEAD, a failed subscription, the server ending it, another device's token",
  async () => {
    const s = await startTestSluice();
    const open: { close(): Promise<unknown> }[] = [];
    try {
      const { sluice } = s.server;
      await s.admin("/admin/channels", { method: "POST", body: JSON.stringify({ name: "ends" }) }).then((r) =>
        r.text()
      );
      const [a, b] = [await s.device("dev-a"), await s.device("dev-b")];
      const events = `${s.url}/channels/ends/events?token=${a}`;
      // HEAD runs the GET route without reading its body: it must open nothing.
      for (let i = 0; i < 3; i++) {
        const head = await fetch(events, { method: "HEAD" });
        assert.equal(head.status, 200);
        assert.equal(head.headers.get("content-type"), "text/event-stream; charset=utf-8");
      }
      assert.equal(sluice.deviceStreams.held("dev-a"), 0);
      assert.equal(sluice.topics.subscriberCount(), 0);

      // A subscription that fails ends the stream with an error event, and gives the slot back.
      const subscribe = sluice.topics.subscribe;
      sluice.topics.subscribe = () => Promise.reject(new Error("KV read failed"));
      const failed = await SseClient.open(events);
      await failed.done;
      sluice.topics.subscribe = subscribe;
      assert.deepEqual(failed.events.map((e) => e.event), ["error"]);
      assert.equal(sluice.deviceStreams.held("dev-a"), 0);

      // Streams Sluice ends itself (here: their channel deleted) give their slots back.
      for (let i = 0; i < 2; i++) open.push(await SseClient.open(events));
      await waitFor(() => sluice.deviceStreams.held("dev-a") === 2);
      await s.admin("/admin/channels/ends", { method: "DELETE" }).then((r) => r.text());
      await waitFor(() => sluice.deviceStreams.held("dev-a") === 0, 5_000, "slots back after the channel went");

      // A WebSocket that authenticates as another device moves its slot to it.
      const ws = await WsClient.connect(`${s.url}/ws?token=${a}`);
      open.push(ws);
      assert.equal(sluice.deviceStreams.held("dev-a"), 1);
      assert.equal((await ws.request("Authenticate", { token: b })).status, "success");
      assert.equal(sluice.deviceStreams.held("dev-a"), 0);
      assert.equal(sluice.deviceStreams.held("dev-b"), 1);
      await ws.close();
      await waitFor(() => sluice.deviceStreams.held("dev-b") === 0);
    } finally {
      for (const c of open) await c.close();
      await s.close();
    }
  },
);

integration("SSE streams past the server's cap are refused with 503, whoever asks", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sluice-test-" });
  const sluice = await openSluice({
    config: loadConfig({ ADMIN_TOKEN: ADMIN, KV_PATH: `${dir}/sluice.kv`, MQTT_PORT: "off" }),
    manifest: testManifest,
    workerUrl: new URL("../fixtures/worker_entry.ts", import.meta.url),
    log: silentLogger,
  });
  const server = await startServer(sluice, {
    port: 0,
    hostname: "127.0.0.1",
    adapters: [sseAdapter(sluice, { maxStreams: 2 })],
  });
  const open: SseClient[] = [];
  try {
    const events = `${server.url}/channels/_pumps/events?token=${ADMIN}`;
    for (let i = 0; i < 2; i++) open.push(await SseClient.open(events));
    const refused = await fetch(events);
    assert.equal(refused.status, 503);
    assert.match((await refused.json()).error.message, /Too many event streams open \(2\)/);
    await open.shift()!.close();
    open.push(
      await waitFor(async () => {
        const c = await SseClient.open(events);
        return c.response.status === 200 ? c : (await c.close(), null);
      }),
    );
  } finally {
    for (const c of open) await c.close();
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});
