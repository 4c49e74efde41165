import assert from "node:assert/strict";
import { WsClient } from "../helpers/clients.ts";
import { integration, post, startTestSluice } from "../helpers/sluice.ts";

integration("wrong tokens over HTTP and in WebSocket Authenticate frames share one per-address slow-down", async () => {
  const s = await startTestSluice();
  try {
    const token = await s.device("throttled-1");
    const ws = await WsClient.connect(`${s.url}/ws?token=${token}`);
    const wsFailure = async () => {
      const started = performance.now();
      const reply = await ws.request("Authenticate", { token: "sl_guess" });
      assert.equal((reply.error as { code: string }).code, "unauthorized");
      return performance.now() - started;
    };
    const httpFailure = async () => {
      const started = performance.now();
      const res = await post(`${s.url}/channels/blog_queuing/invoke`, "sl_guess", { method: "test/echo" });
      assert.equal(res.status, 401);
      await res.body?.cancel();
      return performance.now() - started;
    };
    // Ten failures a minute are free, from either protocol.
    for (let i = 0; i < 5; i++) await httpFailure(), await wsFailure();
    // Then each is answered only after a delay that doubles (100 ms, 200 ms, …).
    const eleventh = await wsFailure();
    assert.ok(eleventh >= 95, `the 11th failure (a WebSocket frame) took ${eleventh.toFixed(0)} ms`);
    const twelfth = await httpFailure();
    assert.ok(twelfth >= 195, `the 12th failure (HTTP) took ${twelfth.toFixed(0)} ms`);
    // The session itself is not affected: it keeps its device.
    const reply = await ws.request("blog/queues/processor", {
      channel: "blog_queuing",
      data: "1,1,1:1,2026-11-25T10:00:00Z",
    });
    assert.equal(reply.status, "success");
    await ws.close();
  } finally {
    await s.close();
  }
});
