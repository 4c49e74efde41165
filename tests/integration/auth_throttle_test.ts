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

integration("behind TRUSTED_PROXIES the slow-down counts each forwarded client apart, and without it not", async () => {
  const failure = async (url: string, client: string) => {
    const started = performance.now();
    const res = await fetch(`${url}/channels/blog_queuing/invoke`, {
      method: "POST",
      headers: { authorization: "Bearer sl_guess", "x-forwarded-for": `198.51.100.1, ${client}` },
      body: JSON.stringify({ method: "test/echo" }),
    });
    assert.equal(res.status, 401);
    await res.body?.cancel();
    return performance.now() - started;
  };
  for (const [trusted, apart] of [["127.0.0.1", true], [undefined, false]] as const) {
    const s = await startTestSluice(trusted ? { TRUSTED_PROXIES: trusted } : {});
    try {
      for (let i = 0; i < 10; i++) await failure(s.url, "203.0.113.1"); // the free ten
      // The 11th to 13th wait 100, 200 and 400 ms: a 14th of the same address would wait 800.
      for (let i = 0; i < 3; i++) await failure(s.url, "203.0.113.1");
      const other = await failure(s.url, "203.0.113.2");
      const said = `another forwarded client's first failure took ${other.toFixed(0)} ms`;
      if (apart) assert.ok(other < 600, `${said}: counted apart, it is not slowed down`);
      else assert.ok(other >= 750, `${said}: X-Forwarded-For ignored, it is the proxy's 14th`);
    } finally {
      await s.close();
    }
  }
});
