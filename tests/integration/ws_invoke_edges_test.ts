import assert from "node:assert/strict";
import { WsClient } from "../helpers/clients.ts";
import { integration, startTestSluice } from "../helpers/sluice.ts";

const READING = "20,1,1:1,2026-11-25T10:00:00Z";

function codeOf(reply: Record<string, unknown>): string | undefined {
  return (reply.error as { code?: string } | undefined)?.code;
}

integration("a WebSocket invoke refuses message ids that are not 1–200 characters or a whole number", async () => {
  const s = await startTestSluice();
  try {
    const token = await s.device("wsid");
    const ws = await WsClient.connect(`${s.url}/ws?token=${token}`);
    const invoke = (id: unknown, data = READING) =>
      ws.request("blog/queues/processor", { channel: "blog_queuing", data, id });
    // Two different objects used to become the same id ("[object Object]"): the second, acked as a
    // duplicate, was lost.
    for (const id of [{ a: 1 }, [1], true, 1.5, "x".repeat(201)]) {
      const reply = await invoke(id);
      assert.equal(reply.status, "failure", `id ${JSON.stringify(id).slice(0, 40)}: ${JSON.stringify(reply)}`);
      assert.equal(codeOf(reply), "validation_failed");
      assert.match((reply.error as { message: string }).message, /id/);
    }
    // A 3,000-character id used to be acked, and its dedup key (over KV's 2 KiB key limit) then
    // could never be written: Sluice could not stop within its 5 s, nor start again on that KV.
    const long = await invoke("y".repeat(3000));
    assert.equal(codeOf(long), "validation_failed", JSON.stringify(long));
    const ok = await invoke(7);
    assert.equal(ok.status, "success", JSON.stringify(ok));
    await ws.close();
    await s.restart();
    const again = await WsClient.connect(`${s.url}/ws?token=${token}`);
    const resent = await again.request("blog/queues/processor", { channel: "blog_queuing", data: READING, id: "7" });
    assert.deepEqual(resent.result, { taskId: (ok.result as { taskId: string }).taskId, duplicate: true });
    await again.close();
  } finally {
    await s.close();
  }
});

integration("a WebSocket invoke on a channel name that cannot exist is refused as invalid, not internal", async () => {
  const s = await startTestSluice();
  try {
    const token = await s.device("wsch");
    const ws = await WsClient.connect(`${s.url}/ws?token=${token}`);
    for (const channel of ["c".repeat(3000), "bad name", "é\u0000"]) {
      const reply = await ws.request("blog/queues/processor", { channel, data: READING });
      assert.equal(codeOf(reply), "validation_failed", `${channel.slice(0, 20)}: ${JSON.stringify(reply)}`);
      assert.match((reply.error as { message: string }).message, /channel/);
    }
    await ws.close();
  } finally {
    await s.close();
  }
});
