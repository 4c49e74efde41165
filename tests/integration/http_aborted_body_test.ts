import assert from "node:assert/strict";
import { integration, post, recordingLogger, startTestSluice, waitFor } from "../helpers/sluice.ts";

/** Sends a request whose body stops short (of its Content-Length, or chunked), then closes the connection. */
async function abortedUpload(url: string, path: string, token: string, chunked = false): Promise<void> {
  const { hostname, port } = new URL(url);
  const conn = await Deno.connect({ hostname, port: Number(port) });
  const body = '{"method":"blog/queues/processor","params":{"data":"20,1,1:1,2026-11-25T10:00:00Z"}';
  const head = `POST ${path} HTTP/1.1\r\nHost: ${hostname}\r\nAuthorization: Bearer ${token}\r\n` +
    `Content-Type: application/json\r\n` +
    (chunked ? "Transfer-Encoding: chunked\r\n\r\n" : `Content-Length: ${body.length + 100}\r\n\r\n`);
  await conn.write(new TextEncoder().encode(head + (chunked ? `${body.length.toString(16)}\r\n${body}\r\n` : body)));
  await new Promise((r) => setTimeout(r, 100)); // the handler is reading the body by now
  conn.close();
}

integration("a client that closes the connection in the middle of its body is not an internal error", async () => {
  const log = recordingLogger();
  const s = await startTestSluice({}, undefined, { log });
  try {
    const token = await s.device("quitter");
    for (const path of ["/channels/blog_queuing/invoke", "/channels/blog_queuing/messages", "/blog/queues/feed"]) {
      await abortedUpload(s.url, path, token);
      await abortedUpload(s.url, path, token, true);
    }
    const metrics = await waitFor(
      async () => {
        const text = await (await s.admin("/metrics")).text();
        return /sluice_ingest_refused_total\{protocol="http",code="[a-z_]+"\} 6/.test(text) ? text : null;
      },
      5000,
      "the six cut-off uploads counted as refused",
    );
    assert.doesNotMatch(metrics, /protocol="http",code="internal"/);
    assert.deepEqual(log.lines.filter((l) => l.startsWith("error")), [], "nothing logged as an unexpected error");
    const ok = await post(`${s.url}/channels/blog_queuing/invoke`, token, {
      method: "blog/queues/processor",
      params: { data: "20,1,1:1,2026-11-25T10:00:00Z" },
    });
    assert.equal(ok.status, 202, await ok.text());
  } finally {
    await s.close();
  }
});
