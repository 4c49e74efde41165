import assert from "node:assert/strict";
import { SseClient, WsClient } from "../helpers/clients.ts";
import {
  ADMIN,
  integration,
  post,
  recordingLogger,
  startTestSluice,
  type TestSluice,
  waitFor,
} from "../helpers/sluice.ts";

async function channel(s: TestSluice, body: Record<string, unknown>) {
  const res = await s.admin("/admin/channels", { method: "POST", body: JSON.stringify(body) });
  assert.equal(res.status, 201, await res.text());
}

integration("two WebSocket subscribers both get all 200 messages a third client publishes, in order", async () => {
  const s = await startTestSluice();
  try {
    await channel(s, { name: "news" });
    const token = await s.device("pub");
    const a = await WsClient.connect(`${s.url}/ws?token=${token}`);
    const b = await WsClient.connect(`${s.url}/ws`);
    assert.equal((await b.request("Authenticate", { token: ADMIN })).status, "success");
    for (const c of [a, b]) assert.equal((await c.request("Subscribe", { channel: "news" })).status, "success");
    const bad = await a.request("Subscribe", { channel: "news", from: 0 });
    assert.match((bad.error as { message: string }).message, /^Invalid params\.from: .*>=1/);
    const p = await WsClient.connect(`${s.url}/ws?token=${token}`);
    for (let n = 1; n <= 200; n++) {
      const r = await p.request("Publish", { channel: "news", message: n % 2 ? { n } : `text ${n}` });
      assert.equal(r.status, "success", JSON.stringify(r));
    }
    for (const c of [a, b]) {
      await waitFor(() => c.pushes.length >= 200, 10_000, "200 pushes");
      assert.deepEqual(c.pushes.map((m) => m.seq), Array.from({ length: 200 }, (_, i) => i + 1));
      assert.deepEqual(c.pushes[0], { channel: "news", seq: 1, message: { n: 1 } });
      assert.deepEqual(c.pushes[1]!.message, "text 2");
    }
    await Promise.all([a, b, p].map((c) => c.close()));
  } finally {
    await s.close();
  }
});

integration(
  "subscribers are told when Sluice stops: WebSocket closes with 1001, SSE ends with an error event",
  async () => {
    const s = await startTestSluice();
    let stopped = false;
    try {
      await channel(s, { name: "told" });
      const token = await s.device("t1");
      const ws = await WsClient.connect(`${s.url}/ws?token=${token}`);
      assert.equal((await ws.request("Subscribe", { channel: "told" })).status, "success");
      const sse = await SseClient.open(`${s.url}/channels/told/events?token=${token}`);
      await waitFor(() => sse.comments.some((c) => c.startsWith("subscribed")));
      await s.close();
      stopped = true;
      const closed = await ws.closed;
      assert.equal(closed.code, 1001, closed.reason);
      await sse.done;
      assert.deepEqual(sse.events.map((e) => [e.event, JSON.parse(e.data)]), [
        ["error", "Sluice is stopping; reconnect in a moment"],
      ]);
    } finally {
      if (!stopped) await s.close();
    }
  },
);

integration("a WebSocket client that resumes with from = last seq + 1 gets exactly the rest", async () => {
  const s = await startTestSluice();
  try {
    await channel(s, { name: "resume" });
    const token = await s.device("r1");
    const first = await WsClient.connect(`${s.url}/ws?token=${token}`);
    await first.request("Subscribe", { channel: "resume" });
    for (let n = 1; n <= 50; n++) await post(`${s.url}/channels/resume/messages`, token, { n }).then((r) => r.json());
    await waitFor(() => first.pushes.length === 50);
    await first.close();
    for (let n = 51; n <= 120; n++) await post(`${s.url}/channels/resume/messages`, token, { n }).then((r) => r.json());
    const again = await WsClient.connect(`${s.url}/ws?token=${token}`);
    const last = first.pushes.at(-1)!.seq;
    const sub = await again.request("Subscribe", { channel: "resume", from: last + 1 });
    assert.equal(sub.status, "success");
    const publishing = (async () => {
      for (let n = 121; n <= 150; n++) {
        await post(`${s.url}/channels/resume/messages`, token, { n }).then((r) => r.json());
      }
    })();
    await publishing;
    await waitFor(() => again.pushes.length >= 100, 10_000, "the rest");
    assert.deepEqual(again.pushes.map((m) => m.seq), Array.from({ length: 100 }, (_, i) => i + 51));
    await again.close();
  } finally {
    await s.close();
  }
});

integration("SSE delivers with id = seq and resumes after Last-Event-ID without loss or repeat", async () => {
  const s = await startTestSluice();
  try {
    await channel(s, { name: "sse" });
    const token = await s.device("s1");
    const url = `${s.url}/channels/sse/events?token=${token}`;
    const one = await SseClient.open(url);
    assert.equal(one.response.headers.get("content-type"), "text/event-stream; charset=utf-8");
    await waitFor(() => one.comments.some((c) => c.startsWith("subscribed")));
    for (let n = 1; n <= 30; n++) await post(`${s.url}/channels/sse/messages`, token, { n }).then((r) => r.json());
    await waitFor(() => one.events.length === 30);
    assert.deepEqual(JSON.parse(one.events[0]!.data), { channel: "sse", seq: 1, message: { n: 1 } });
    await one.close();
    for (let n = 31; n <= 60; n++) await post(`${s.url}/channels/sse/messages`, token, { n }).then((r) => r.json());
    const two = await SseClient.open(url, { "last-event-id": one.events.at(-1)!.id! });
    await waitFor(() => two.events.length === 30, 10_000, "resumed events");
    assert.deepEqual(two.events.map((e) => Number(e.id)), Array.from({ length: 30 }, (_, i) => i + 31));
    await two.close();
    const three = await SseClient.open(`${url}&from=59`);
    await waitFor(() => three.events.length === 2);
    assert.deepEqual(three.events.map((e) => e.id), ["59", "60"]);
    await three.close();
    // An EventSource opened with `from` repeats it when it reconnects, with the last id it saw.
    const four = await SseClient.open(`${url}&from=1`, { "last-event-id": "58" });
    await waitFor(() => four.events.length === 2);
    assert.deepEqual(four.events.map((e) => e.id), ["59", "60"]);
    await four.close();
  } finally {
    await s.close();
  }
});

integration(
  "a subscriber catching up on a backlog bigger than its send buffer gets all of it, at the pace it reads",
  async () => {
    const s = await startTestSluice({ MAX_SEND_BUFFER_BYTES: "262144" });
    try {
      await channel(s, { name: "backlog" });
      const token = await s.device("b1");
      // 120 messages of 8 KB: 960 KB waiting, against a 256 KiB send buffer.
      for (let n = 1; n <= 120; n++) {
        await post(`${s.url}/channels/backlog/messages`, token, { n, pad: "p".repeat(8000) }).then((r) => r.json());
      }
      const ws = await WsClient.connect(`${s.url}/ws?token=${token}`);
      await ws.request("Subscribe", { channel: "backlog", from: 1 });
      const sse = await SseClient.open(`${s.url}/channels/backlog/events?token=${token}&from=1`);
      await waitFor(() => ws.pushes.length === 120 && sse.events.length === 120, 15_000, "the whole backlog");
      assert.deepEqual(ws.pushes.map((m) => m.seq), Array.from({ length: 120 }, (_, i) => i + 1));
      assert.deepEqual(sse.events.map((e) => Number(e.id)), Array.from({ length: 120 }, (_, i) => i + 1));
      await ws.close();
      await sse.close();
    } finally {
      await s.close();
    }
  },
);

integration(
  "a burst of messages far bigger than the send buffer reaches WebSocket and SSE subscribers that read, none cut off",
  async () => {
    const s = await startTestSluice({ MAX_SEND_BUFFER_BYTES: "65536" });
    try {
      await channel(s, { name: "burst" });
      const token = await s.device("burst-1");
      const ws = await WsClient.connect(`${s.url}/ws?token=${token}`);
      await ws.request("Subscribe", { channel: "burst" });
      const sse = await SseClient.open(`${s.url}/channels/burst/events?token=${token}`);
      await waitFor(() => s.server.sluice.topics.subscriberCount() === 2);
      // 300 messages of 4 KB at once: 1.2 MB that the feed hands over in pages, against a 64 KiB buffer.
      const pad = "p".repeat(4000);
      const sent = await Promise.all(
        Array.from(
          { length: 300 },
          (_, i) => post(`${s.url}/channels/burst/messages`, token, { n: i, pad }).then((r) => r.json()),
        ),
      );
      assert.equal(sent.filter((b) => typeof b.seq === "number").length, 300);
      await waitFor(() => ws.pushes.length === 300 && sse.events.length === 300, 20_000, "the whole burst");
      const seqs = Array.from({ length: 300 }, (_, i) => i + 1);
      assert.deepEqual(ws.pushes.map((m) => m.seq), seqs);
      assert.deepEqual(sse.events.map((e) => Number(e.id)), seqs);
      assert.equal(s.server.sluice.topics.subscriberCount(), 2);
      await ws.close();
      await sse.close();
    } finally {
      await s.close();
    }
  },
);

integration(
  "an SSE subscriber that reads nothing is cut off after SLOW_CLIENT_TIMEOUT: its unsent data dropped, the stream ended",
  async () => {
    const log = recordingLogger();
    const s = await startTestSluice({ MAX_SEND_BUFFER_BYTES: "65536", SLOW_CLIENT_TIMEOUT: "1s" }, undefined, { log });
    try {
      await channel(s, { name: "stuck" });
      const token = await s.device("stuck-1");
      const port = Number(new URL(s.url).port);
      const raw = await Deno.connect({ hostname: "127.0.0.1", port });
      await raw.write(
        new TextEncoder().encode(`GET /channels/stuck/events?token=${token} HTTP/1.1\r\nHost: x\r\n\r\n`),
      );
      await waitFor(() => s.server.sluice.topics.subscriberCount() === 1);
      const big = "x".repeat(40_000);
      for (let n = 1; n <= 200; n++) {
        await post(`${s.url}/channels/stuck/messages`, token, { n, big }).then((r) => r.json());
      }
      await waitFor(() => s.server.sluice.topics.subscriberCount() === 0, 15_000, "the stuck client cut off");
      // What the socket still had in flight arrives, then the end: the rest was dropped with the connection.
      const buf = new Uint8Array(1 << 16);
      let received = 0, ended = false;
      const deadline = Date.now() + 10_000;
      while (!ended && Date.now() < deadline) {
        const n = await Promise.race([
          raw.read(buf).catch(() => null),
          new Promise<"wait">((r) => setTimeout(() => r("wait"), 1000)),
        ]);
        if (n === null) ended = true;
        else if (n !== "wait") received += n;
        else if (received > 0) break; // nothing more comes, and the connection is still open
      }
      raw.close();
      assert.ok(ended, `the connection was still open after ${received} bytes`);
      assert.deepEqual(log.lines.filter((l) => l.startsWith("error")), [], "a cut-off is no failed handler");
      assert.ok(log.lines.some((l) => l.startsWith("warn SSE subscriber of stuck cut off")), log.lines.join("\n"));
      const metrics = await (await fetch(`${s.url}/metrics`)).text();
      assert.match(metrics, /^sluice_topic_subscribers_cut_off_total\{protocol="sse"\} 1$/m);
    } finally {
      await s.close();
    }
  },
);

integration("a WebSocket subscriber that does not read is cut off while the others keep receiving", async () => {
  const s = await startTestSluice({ MAX_SEND_BUFFER_BYTES: "65536", SLOW_CLIENT_TIMEOUT: "1s" });
  try {
    await channel(s, { name: "flood" });
    const token = await s.device("f1");
    const good = await WsClient.connect(`${s.url}/ws?token=${token}`);
    await good.request("Subscribe", { channel: "flood" });
    // A client that completes the upgrade, subscribes, then never reads again.
    const port = Number(new URL(s.url).port);
    const raw = await Deno.connect({ hostname: "127.0.0.1", port });
    await raw.write(new TextEncoder().encode(
      `GET /ws?token=${token} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    ));
    const frame = JSON.stringify({ id: 1, method: "Subscribe", params: { channel: "flood" } });
    await raw.write(maskedTextFrame(frame));
    await waitFor(() => s.server.sluice.topics.subscriberCount() === 2);
    const big = "x".repeat(40_000);
    for (let n = 1; n <= 400; n++) {
      await post(`${s.url}/channels/flood/messages`, token, { n, big }).then((r) => r.json());
    }
    await waitFor(() => s.server.sluice.topics.subscriberCount() === 1, 10_000, "slow client dropped");
    const metrics = await (await fetch(`${s.url}/metrics`)).text();
    assert.match(metrics, /^sluice_topic_subscribers_cut_off_total\{protocol="ws"\} 1$/m);
    await waitFor(() => good.pushes.length === 400, 20_000, "the good client got everything");
    raw.close();
    await good.close();
  } finally {
    await s.close();
  }
});

integration("a subscription starting past the channel's next message is refused, on WebSocket and SSE", async () => {
  const s = await startTestSluice();
  try {
    await channel(s, { name: "short" });
    const token = await s.device("short-1");
    for (let n = 1; n <= 3; n++) await post(`${s.url}/channels/short/messages`, token, { n }).then((r) => r.json());
    const ws = await WsClient.connect(`${s.url}/ws?token=${token}`);
    const past = await ws.request("Subscribe", { channel: "short", from: 5 });
    assert.equal(past.status, "failure", JSON.stringify(past));
    assert.match(
      JSON.stringify(past.error),
      /validation_failed.*Message 5 is not reached yet.*has 3 message\(s\).*at 4 at most/,
    );
    assert.equal((await ws.request("Subscribe", { channel: "short", from: 4 })).status, "success");
    await ws.close();
    for (const [query, headers] of [["&from=5", {}], ["", { "last-event-id": "4" }]] as const) {
      const res = await fetch(`${s.url}/channels/short/events?token=${token}${query}`, { headers });
      assert.equal(res.status, 400, query || "Last-Event-ID");
      assert.match(await res.text(), /Message 5 is not reached yet/);
    }
    const resumed = await SseClient.open(`${s.url}/channels/short/events?token=${token}`, { "last-event-id": "3" });
    assert.equal(resumed.response.status, 200);
    await resumed.close();
  } finally {
    await s.close();
  }
});

integration("anonymous subscribers are refused unless the channel allows them", async () => {
  const s = await startTestSluice();
  try {
    await channel(s, { name: "closed" });
    await channel(s, { name: "public", anonymousSubscribe: true, anonymousPublish: true });
    const ws = await WsClient.connect(`${s.url}/ws`);
    const refused = await ws.request("Subscribe", { channel: "closed" });
    assert.deepEqual([refused.status, (refused.error as { code: string }).code], ["failure", "unauthorized"]);
    assert.equal((await ws.request("Subscribe", { channel: "public" })).status, "success");
    const pub = await ws.request("Publish", { channel: "public", message: "hello" });
    assert.equal(pub.status, "success");
    await waitFor(() => ws.pushes.length === 1);
    const sse = await fetch(`${s.url}/channels/closed/events`);
    assert.equal(sse.status, 401);
    await sse.body?.cancel();
    const pumps = await ws.request("Subscribe", { channel: "_pumps" });
    assert.equal((pumps.error as { code: string }).code, "forbidden");
    const anonPublish = await post(`${s.url}/channels/closed/messages`, null, { x: 1 });
    assert.equal(anonPublish.status, 401);
    await anonPublish.body?.cancel();
    await ws.close();
  } finally {
    await s.close();
  }
});

integration("a subscriber script runs once per message, in order, with retries, effects exactly once", async () => {
  const s = await startTestSluice({ RETRY_BASE_MS: "20" });
  try {
    await channel(s, { name: "feed", subscribers: ["test/collect"] });
    const token = await s.device("c1");
    for (let n = 1; n <= 6; n++) {
      const res = await post(`${s.url}/channels/feed/messages`, token, { n });
      assert.equal(res.status, 202);
      assert.equal((await res.json()).seq, n);
    }
    const doc = await waitFor(async () => {
      const d = (await s.server.sluice.kv.get<{ ns: number[] }>(["doc", "collected", "list"])).value;
      return d?.ns.length === 6 ? d : null;
    });
    assert.deepEqual(doc?.ns, [1, 2, 3, 4, 5, 6]);
  } finally {
    await s.close();
  }
});

integration(
  "GET /tasks/:id follows a subscriber script's run for a message, by the id its dead letter gives",
  async () => {
    const s = await startTestSluice({ RETRY_BASE_MS: "20", MAX_ATTEMPTS: "2" });
    try {
      await channel(s, { name: "feed", subscribers: ["test/collect", "test/permanent"] });
      const token = await s.device("c2");
      for (let n = 1; n <= 3; n++) {
        assert.equal(
          (await post(`${s.url}/channels/feed/messages`, token, { n })).status,
          202,
        );
      }
      const get = async (id: string) => {
        const res = await s.admin(`/tasks/${encodeURIComponent(id)}`);
        return { status: res.status, body: await res.json() };
      };
      // The permanent failures are dead letters; their ids are the runs' ids.
      const dead = await waitFor(async () => {
        const list = (await (await s.admin("/admin/dead-letters")).json()).deadLetters;
        return list.length === 3 ? list as { taskId: string; seq: number }[] : null;
      });
      const third = dead.find((d) => d.seq === 3)!;
      const deadRun = await get(third.taskId);
      assert.deepEqual([deadRun.status, deadRun.body.status, deadRun.body.method, deadRun.body.device], [
        200,
        "dead",
        "test/permanent",
        "c2",
      ]);
      // The other script's run of the same message: done, after the one failure test/collect makes on message 3.
      const collected = third.taskId.replace(/\.test~permanent$/, ".test~collect");
      const done = await waitFor(async () => {
        const r = await get(collected);
        return r.body.status === "done" ? r.body : null;
      });
      assert.deepEqual([done.method, done.attempts], ["test/collect", 2]);
      // A script that does not follow the topic has no runs there.
      assert.equal((await get(third.taskId.replace(/\.test~permanent$/, ".test~echo"))).status, 404);
      // The channel's stats give each subscriber script's progress.
      const stats = await (await s.admin("/admin/channels/feed/stats")).json();
      assert.deepEqual(stats.subscribers, [
        { script: "test/collect", done: 3, behind: 0, retrying: null },
        { script: "test/permanent", done: 3, behind: 0, retrying: null },
      ]);
      // A dead run queued again is followed where it went (the channel's _retry tasks): never "done",
      // as the script always refuses it; dead again once it ran.
      const again = await s.admin(`/admin/dead-letters/${encodeURIComponent(third.taskId)}/retry`, { method: "POST" });
      assert.equal(again.status, 202);
      await again.body?.cancel();
      const seen: string[] = [];
      await waitFor(async () => {
        const r = await get(third.taskId);
        seen.push(r.body.status);
        return r.body.status === "dead";
      });
      assert.ok(!seen.includes("done"), seen.join());
    } finally {
      await s.close();
    }
  },
);

integration(
  "a channel's stats show a subscriber script that is retrying, with its error and next attempt",
  async () => {
    const s = await startTestSluice({ RETRY_BASE_MS: "60000" });
    try {
      await channel(s, { name: "stuck", subscribers: ["test/fail"] });
      const token = await s.device("c3");
      for (let n = 1; n <= 2; n++) await (await post(`${s.url}/channels/stuck/messages`, token, { n })).body?.cancel();
      const sub = await waitFor(async () => {
        const st = await (await s.admin("/admin/channels/stuck/stats")).json();
        return st.subscribers[0]?.retrying ? st.subscribers[0] : null;
      });
      assert.deepEqual([sub.script, sub.done, sub.behind, sub.retrying.seq], ["test/fail", 0, 2, 1]);
      assert.match(sub.retrying.error, /Deliberate failure/);
      assert.ok(Date.parse(sub.retrying.nextAttemptAt) > Date.now() + 30_000, sub.retrying.nextAttemptAt);
    } finally {
      await s.close();
    }
  },
);

integration("pump state changes are published on _pumps for the admin", async () => {
  const s = await startTestSluice();
  try {
    const ws = await WsClient.connect(`${s.url}/ws?token=${ADMIN}`);
    assert.equal((await ws.request("Subscribe", { channel: "_pumps" })).status, "success");
    const token = await s.device("pp");
    await post(`${s.url}/blog/queues/feed`, token, { temperature: 20, pressure: 1, coordinates: "1:1" }).then((r) =>
      r.json()
    );
    await waitFor(() => ws.pushes.length === 1);
    const state = ws.pushes[0]!.message as { id: string; readings: number };
    assert.deepEqual([state.id, state.readings], ["pp", 1]);
    await ws.close();
  } finally {
    await s.close();
  }
});

integration("a WebSocket invoke with params.channel queues a task, and without runs a public script", async () => {
  const s = await startTestSluice();
  try {
    const token = await s.device("wi");
    const ws = await WsClient.connect(`${s.url}/ws?token=${token}`);
    const queued = await ws.request("blog/queues/processor", {
      channel: "blog_queuing",
      data: "20,1,1:1,2026-11-25T10:00:00Z",
      id: "ws-1",
    });
    assert.equal(queued.status, "success", JSON.stringify(queued));
    const again = await ws.request("blog/queues/processor", { channel: "blog_queuing", data: "x", id: "ws-1" });
    assert.deepEqual(again.result, { taskId: (queued.result as { taskId: string }).taskId, duplicate: true });
    const inline = await ws.request("test/echo", { hello: 1 });
    assert.deepEqual(inline.result, { echoed: { hello: 1 }, device: "wi", attempt: 1 });
    const unknown = await ws.request("no/such", {});
    assert.equal((unknown.error as { code: string }).code, "not_found");
    const garbage = new Promise<Record<string, unknown>>((resolve) => {
      ws.socket.addEventListener("message", (e) => resolve(JSON.parse(e.data)), { once: true });
    });
    ws.socket.send("{not json");
    assert.equal(((await garbage).error as { code: string }).code, "malformed_json");
    await ws.close();
  } finally {
    await s.close();
  }
});

integration("a WebSocket refusal for want of a token says when the session's Authenticate failed", async () => {
  const s = await startTestSluice();
  try {
    await channel(s, { name: "closed-shop" });
    const ws = await WsClient.connect(`${s.url}/ws`);
    const publish = () => ws.request("Publish", { channel: "closed-shop", message: 1 });
    const plain = await publish();
    assert.equal(
      (plain.error as { message: string }).message,
      'Channel "closed-shop" does not accept anonymous messages',
    );
    await ws.request("Authenticate", { token: "sl_wrong" });
    const after = await publish();
    assert.equal((after.error as { code: string }).code, "unauthorized");
    assert.match(
      (after.error as { message: string }).message,
      /anonymous messages \(this session is anonymous: its Authenticate failed\)$/,
    );
    const queued = await ws.request("blog/queues/processor", { channel: "blog_queuing", data: "1,1,1:1" });
    assert.match((queued.error as { message: string }).message, /needs a device token.*its Authenticate failed/);
    await ws.close();
  } finally {
    await s.close();
  }
});

integration(
  "a WebSocket connection's frames take effect in the order sent, without waiting for the replies",
  async () => {
    const s = await startTestSluice();
    try {
      await channel(s, { name: "ordered" });
      const token = await s.device("ws-order");
      const ws = await WsClient.connect(`${s.url}/ws`);
      // Sent at once: a failed Authenticate, then a good one, then messages; each must see the
      // identity the Authenticate frames before it made.
      const replies = [
        ws.request("Authenticate", { token: "not-a-token" }),
        ws.request("Authenticate", { token }),
        ws.request("Subscribe", { channel: "ordered" }),
        ws.request("Unsubscribe", { channel: "ordered" }),
        ...Array.from(
          { length: 60 },
          (_, i) => ws.request("Publish", { channel: "ordered", message: i, ...(i % 3 === 0 ? { id: `m-${i}` } : {}) }),
        ),
      ];
      const [badAuth, goodAuth, sub, unsub, ...published] = await Promise.all(replies);
      assert.equal(badAuth!.status, "failure");
      assert.deepEqual(goodAuth!.result, { authenticated: "device", device: "ws-order" });
      assert.equal(sub!.status, "success");
      assert.equal(unsub!.status, "success");
      for (const r of published) {
        assert.equal(r.status, "success", JSON.stringify(r));
      }
      // The seqs follow the frames' order, and the Unsubscribe sent before them ended the subscription.
      assert.deepEqual(
        published.map((r) => (r.result as { seq: number }).seq),
        Array.from({ length: 60 }, (_, i) => i + 1),
      );
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(ws.pushes.length, 0);
      await ws.close();
    } finally {
      await s.close();
    }
  },
);

/**
 * Sends eleven wrong Authenticates: ten failures are free, the eleventh is answered only after the
 * brute-force delay, so the frames sent next wait behind it.
 */
function holdBehindAuthenticate(ws: WsClient): void {
  for (let i = 0; i < 11; i++) {
    ws.socket.send(JSON.stringify({ id: i, method: "Authenticate", params: { token: "x" } }));
  }
}

integration(
  "a WebSocket client whose frames pile up behind one held back is closed, not buffered without end",
  async () => {
    const s = await startTestSluice();
    try {
      const ws = await WsClient.connect(`${s.url}/ws`);
      holdBehindAuthenticate(ws);
      const frame = JSON.stringify({ method: "Publish", params: { channel: "blog_queuing", message: 1 } });
      for (let i = 0; i < 1_001; i++) ws.socket.send(frame); // all wait behind the eleventh Authenticate
      // Closed by the server (1008, or cut off when its close meets the frames still coming in).
      const closed = await Promise.race([ws.closed, new Promise<null>((r) => setTimeout(() => r(null), 5000))]);
      assert.ok(closed, "the server closed the connection");
      assert.ok(closed.code === 1008 || !closed.wasClean, `${closed.code} ${closed.reason}`);
      assert.equal((await fetch(`${s.url}/healthz`).then((r) => r.json())).status, "ok");
    } finally {
      await s.close();
    }
  },
);

integration(
  "a WebSocket client without a token whose waiting frames pass 4 Mi characters is closed, not held in memory",
  async () => {
    const s = await startTestSluice();
    try {
      const ws = await WsClient.connect(`${s.url}/ws`);
      holdBehindAuthenticate(ws);
      // 100 frames of 48 KB (4.8 MB) behind the held Authenticate: well under 1,000 frames.
      const frame = JSON.stringify({ method: "Publish", params: { channel: "nope", message: "x".repeat(48_000) } });
      for (let i = 0; i < 100; i++) ws.socket.send(frame);
      const closed = await Promise.race([ws.closed, new Promise<null>((r) => setTimeout(() => r(null), 5000))]);
      assert.ok(closed, "the server closed the connection");
      assert.ok(closed.code === 1008 || !closed.wasClean, `${closed.code} ${closed.reason}`);
      assert.equal((await fetch(`${s.url}/healthz`).then((r) => r.json())).status, "ok");
    } finally {
      await s.close();
    }
  },
);

/** A client-to-server WebSocket text frame (clients must mask). */
function maskedTextFrame(text: string): Uint8Array {
  const payload = new TextEncoder().encode(text);
  const mask = crypto.getRandomValues(new Uint8Array(4));
  const header = payload.length < 126
    ? [0x81, 0x80 | payload.length]
    : [0x81, 0x80 | 126, payload.length >> 8, payload.length & 255];
  const out = new Uint8Array(header.length + 4 + payload.length);
  out.set(header, 0);
  out.set(mask, header.length);
  payload.forEach((b, i) => out[header.length + 4 + i] = b ^ mask[i % 4]!);
  return out;
}
