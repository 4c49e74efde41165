import assert from "node:assert/strict";
import { WsClient } from "../helpers/clients.ts";
import { ADMIN, integration, post, startTestSluice, waitFor } from "../helpers/sluice.ts";

integration(
  "a WebSocket frame with a deeply nested id gets a failure reply, one with an object id acts unechoed",
  async () => {
    const s = await startTestSluice();
    try {
      const token = await s.device("nester");
      const ws = new WebSocket(`${s.url.replace(/^http/, "ws")}/ws?token=${token}`);
      await new Promise((resolve, reject) => (ws.onopen = resolve, ws.onerror = reject));
      const replies: Record<string, unknown>[] = [];
      ws.onmessage = (e) => replies.push(JSON.parse(e.data));
      // Under the frame limit (MAX_BODY_BYTES + 1 KiB); echoing this id back overflowed the stack in
      // JSON.stringify, an unhandled rejection that ended the whole process.
      const depth = 24_000;
      ws.send(`{"id":${"[".repeat(depth)}${"]".repeat(depth)},"method":"Publish"}`);
      ws.send(
        JSON.stringify({ id: { any: "object" }, method: "Publish", params: { channel: "blog_queuing", message: 1 } }),
      );
      ws.send(JSON.stringify({ id: "after", method: "Publish", params: { channel: "blog_queuing", message: 1 } }));
      await waitFor(() => replies.length >= 3, 10_000, "three replies");
      assert.deepEqual(replies[0], {
        id: null,
        status: "failure",
        error: { code: "validation_failed", message: "Frame nests arrays or objects deeper than 64 levels" },
      });
      // An id that is not a string or number is not echoed, and the frame still acts.
      assert.deepEqual(replies[1], { id: null, status: "success", result: { seq: 1 } });
      assert.equal(replies[2]!.id, "after");
      assert.equal((await fetch(`${s.url}/healthz`)).status, 200);
      ws.close();
    } finally {
      await s.close();
    }
  },
);

integration("WebSocket limits count UTF-8 bytes, as HTTP's do: a frame over them closes with 1009", async () => {
  const s = await startTestSluice({ MAX_BODY_BYTES: "1024" });
  try {
    const token = await s.device("wide");
    const ws = new WebSocket(`${s.url.replace(/^http/, "ws")}/ws?token=${token}`);
    await new Promise((resolve, reject) => (ws.onopen = resolve, ws.onerror = reject));
    const replies: { id: number; status: string; error?: { code: string } }[] = [];
    ws.onmessage = (e) => replies.push(JSON.parse(e.data));
    const closed = new Promise<CloseEvent>((resolve) => ws.onclose = resolve);
    const publish = (id: number, message: string) =>
      ws.send(JSON.stringify({ id, method: "Publish", params: { channel: "blog_queuing", message } }));
    publish(1, "é".repeat(600)); // 602 characters, 1,202 bytes of JSON: over the 1,024
    publish(2, "é".repeat(500)); // 1,002 bytes
    publish(3, "a".repeat(1022)); // 1,024 bytes of JSON with its quotes: at the limit
    publish(4, "a".repeat(1023)); // 1,025 with its quotes, as HTTP counts it
    await waitFor(() => replies.length >= 4, 10_000, "four replies");
    // A refusal may be answered before an earlier frame's commit: compared by id.
    replies.sort((a, b) => a.id - b.id);
    assert.deepEqual(replies.map((r) => [r.id, r.status, r.error?.code]), [
      [1, "failure", "payload_too_large"],
      [2, "success", undefined],
      [3, "success", undefined],
      [4, "failure", "payload_too_large"],
    ]);
    publish(5, "€".repeat(1000)); // a frame of 3,000 bytes in 1,060 characters, over the frame limit (2,048)
    const close = await closed;
    assert.deepEqual([close.code, close.reason], [1009, "Frame over 2048 bytes"]);
  } finally {
    await s.close();
  }
});

integration("over WebSocket, the admin calling a public script is forbidden, as over HTTP", async () => {
  const s = await startTestSluice();
  try {
    const ws = await WsClient.connect(`${s.url}/ws?token=${ADMIN}`);
    try {
      const reply = await ws.request("test/echo", { n: 1 });
      assert.deepEqual(reply.error, { code: "forbidden", message: "Calling a script needs a device token" });
      const http = await post(`${s.url}/test/echo`, ADMIN, { n: 1 });
      assert.equal(http.status, 403);
      await http.body?.cancel();
    } finally {
      await ws.close();
    }
  } finally {
    await s.close();
  }
});

integration("a WebSocket frame starting with a byte order mark is read as over HTTP: the mark is dropped", async () => {
  const s = await startTestSluice();
  try {
    const token = await s.device("bom");
    const ws = new WebSocket(`${s.url.replace(/^http/, "ws")}/ws?token=${token}`);
    await new Promise((resolve, reject) => (ws.onopen = resolve, ws.onerror = reject));
    const replies: Record<string, unknown>[] = [];
    ws.onmessage = (e) => replies.push(JSON.parse(e.data));
    const frame = JSON.stringify({ id: "b", method: "Publish", params: { channel: "blog_queuing", message: 1 } });
    ws.send(`\uFEFF${frame}`);
    await waitFor(() => replies.length >= 1, 10_000, "a reply");
    assert.deepEqual(replies[0], { id: "b", status: "success", result: { seq: 1 } });
    const http = await post(`${s.url}/channels/blog_queuing/messages`, token, `\uFEFF${JSON.stringify(2)}`);
    assert.equal(http.status, 202, "HTTP takes it too");
    await http.body?.cancel();
    ws.close();
  } finally {
    await s.close();
  }
});
