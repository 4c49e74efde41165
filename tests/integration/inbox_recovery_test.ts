import assert from "node:assert/strict";
import { integration, startTestSluice, waitFor } from "../helpers/sluice.ts";

/** Resolves to what `p` gave, or rejects after `ms`: a stop or start that hangs fails the test. */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout>;
  const late = new Promise<never>((_, reject) => timer = setTimeout(() => reject(new Error(`${what} hung`)), ms));
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

integration(
  "an acked message whose id KV cannot hold as a key still reaches its stream, and Sluice restarts",
  async () => {
    const s = await startTestSluice();
    try {
      await s.device("legacy");
      // What an edge that did not check the id let through (WebSocket before the fix): the message is
      // acked from the inbox with a dedup key over KV's 2 KiB key limit, which its move then writes.
      const res = await s.server.sluice.ingest.accept({
        principal: { kind: "device", id: "legacy" },
        channel: "blog_queuing",
        kind: "invoke",
        body: { method: "blog/queues/processor", params: { data: "20,1,1:1,2026-11-25T10:00:00Z" } },
        id: "y".repeat(3000),
        protocol: "ws",
        receivedAt: Date.now(),
      });
      assert.equal(res.kind, "invoke");
      const taskId = res.kind === "invoke" ? res.taskId : "";
      await within(s.restart(), 15_000, "restarting Sluice");
      const task = await waitFor(
        async () => {
          const body = await (await s.admin(`/tasks/${taskId}`)).json();
          return body.status === "done" ? body : null;
        },
        10_000,
        "the acked task to run",
      );
      assert.equal(task.device, "legacy");
    } finally {
      await within(s.close(), 15_000, "stopping Sluice").catch(() => {});
    }
  },
);
