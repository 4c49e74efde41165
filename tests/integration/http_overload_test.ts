import assert from "node:assert/strict";
import { integration, post, startTestSluice } from "../helpers/sluice.ts";

/** A request whose body trickles: its headers and one byte of the 100 it announces, then nothing. */
async function trickle(url: string, token: string): Promise<{ answer: Promise<string>; close(): void }> {
  const { hostname, port } = new URL(url);
  const conn = await Deno.connect({ hostname, port: Number(port) });
  const head = `POST /channels/blog_queuing/messages HTTP/1.1\r\nHost: ${hostname}\r\n` +
    `Authorization: Bearer ${token}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{`;
  await conn.write(new TextEncoder().encode(head));
  const answer = (async () => {
    const buf = new Uint8Array(4096);
    const n = await conn.read(buf).catch(() => null);
    return n ? new TextDecoder().decode(buf.subarray(0, n)) : "";
  })();
  return { answer, close: () => conn.close() };
}

integration(
  "a request body that trickles is refused after BODY_TIMEOUT, freeing its slot; /healthz and /metrics answer at the cap",
  async () => {
    const s = await startTestSluice({ MAX_HTTP_IN_FLIGHT: "2", BODY_TIMEOUT: "1s" });
    const slow: { answer: Promise<string>; close(): void }[] = [];
    try {
      const token = await s.device("slow-1");
      slow.push(await trickle(s.url, token), await trickle(s.url, token));
      await new Promise((r) => setTimeout(r, 200));
      const busy = await post(`${s.url}/channels/blog_queuing/messages`, token, { n: 1 });
      assert.equal(busy.status, 503, "both slots are taken by the trickling bodies");
      await busy.body?.cancel();
      assert.equal((await fetch(`${s.url}/healthz`)).status, 200);
      const metrics = await (await s.admin("/metrics")).text();
      assert.match(metrics, /^sluice_http_requests_refused_total [1-9]/m);
      for (const { answer } of slow) {
        const text = await answer;
        assert.match(text, /^HTTP\/1\.1 400/);
        assert.match(text, /Body not received within 1 s \(BODY_TIMEOUT\)/);
      }
      const after = await post(`${s.url}/channels/blog_queuing/messages`, token, { n: 2 });
      assert.equal(after.status, 202, "the slots are free again");
      await after.body?.cancel();
    } finally {
      for (const c of slow) c.close();
      await s.close();
    }
  },
);
