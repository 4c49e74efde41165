import assert from "node:assert/strict";
import { SseClient, WsClient } from "../helpers/clients.ts";
import { ADMIN, integration, post, startTestSluice, type TestSluice, waitFor } from "../helpers/sluice.ts";
import { hashSecret } from "../../store/hash.ts";
import { keys } from "../../store/keys.ts";

/** Revokes a device and returns when the DELETE was answered (the clock of "within 1 s" starts before it). */
async function revoke(s: TestSluice, id: string): Promise<void> {
  const res = await s.admin(`/admin/devices/${id}`, { method: "DELETE" });
  assert.equal(res.status, 200);
  await res.body?.cancel();
}

/** Resolves with the ms from `since` to when `ended` settles, or rejects after `ms`. */
function within<T>(ended: Promise<T>, since: number, ms: number, what: string): Promise<{ value: T; ms: number }> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    ended.then((value) => ({ value, ms: performance.now() - since })),
    new Promise<never>((_, reject) => timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms)),
  ]).finally(() => clearTimeout(timer));
}

integration(
  "a revoked device's WebSocket sessions are closed within 1 s (1008 Device revoked); others stay",
  async () => {
    const s = await startTestSluice();
    try {
      const token = await s.device("ws-rev"), other = await s.device("ws-other");
      const byQuery = await WsClient.connect(`${s.url}/ws?token=${token}`);
      const byFrame = await WsClient.connect(`${s.url}/ws`);
      assert.equal((await byFrame.request("Authenticate", { token })).status, "success");
      const subscribed = await WsClient.connect(`${s.url}/ws?token=${token}`);
      assert.equal((await subscribed.request("Subscribe", { channel: "blog_queuing" })).status, "success");
      const bystander = await WsClient.connect(`${s.url}/ws?token=${other}`);
      const admin = await WsClient.connect(`${s.url}/ws?token=${ADMIN}`);

      const started = performance.now();
      await revoke(s, "ws-rev");
      for (
        const [what, client] of [["by query token", byQuery], ["by Authenticate", byFrame], [
          "subscribed",
          subscribed,
        ]] as const
      ) {
        const { value: event, ms } = await within(client.closed, started, 1000, what);
        assert.equal(event.code, 1008, what);
        assert.equal(event.reason, "Device revoked", what);
        console.log(`    ${what}: closed ${ms.toFixed(0)} ms after the revocation was sent`);
      }
      // Other devices and the admin keep their sessions.
      const reply = await bystander.request("blog/queues/processor", {
        channel: "blog_queuing",
        data: "1,1,1:1,2026-11-25T10:00:00Z",
      });
      assert.equal(reply.status, "success");
      assert.equal((await admin.request("Subscribe", { channel: "_pumps" })).status, "success");
      // The token no longer opens a session.
      const res = await fetch(`${s.url}/ws?token=${token}`, { headers: { upgrade: "websocket" } });
      assert.equal(res.status, 401);
      await res.body?.cancel();
      await bystander.close();
      await admin.close();
    } finally {
      await s.close();
    }
  },
);

integration("a revoked device's SSE streams end within 1 s; other streams keep receiving", async () => {
  const s = await startTestSluice();
  try {
    const token = await s.device("sse-rev"), other = await s.device("sse-other");
    const events = `${s.url}/channels/blog_queuing/events`;
    const byHeader = await SseClient.open(events, { authorization: `Bearer ${token}` });
    const byQuery = await SseClient.open(`${events}?token=${token}`);
    const bystander = await SseClient.open(events, { authorization: `Bearer ${other}` });
    const admin = await SseClient.open(events, { authorization: `Bearer ${ADMIN}` });
    for (const c of [byHeader, byQuery, bystander, admin]) {
      assert.equal(c.response.status, 200);
      await waitFor(() => c.comments.some((l) => l.startsWith("subscribed")), 5000, "subscribed");
    }

    const started = performance.now();
    await revoke(s, "sse-rev");
    for (const [what, client] of [["token in the header", byHeader], ["token in the query", byQuery]] as const) {
      const { ms } = await within(client.done, started, 1000, what);
      assert.deepEqual(client.events.at(-1), { id: null, event: "error", data: '"Device revoked"' }, what);
      console.log(`    ${what}: ended ${ms.toFixed(0)} ms after the revocation was sent`);
    }
    const res = await post(`${s.url}/channels/blog_queuing/messages`, other, { still: "here" });
    assert.equal(res.status, 202);
    await res.body?.cancel();
    for (const c of [bystander, admin]) {
      await waitFor(() => c.events.some((e) => e.data.includes('"still":"here"')), 5000, "the message on the others");
    }
    const again = await fetch(`${events}?token=${token}`);
    assert.equal(again.status, 401, "the EventSource's reconnect is refused");
    await again.body?.cancel();
    await bystander.close();
    await admin.close();
  } finally {
    await s.close();
  }
});

integration(
  "a device revoked and created again keeps its new sessions when an older revocation's check ends",
  async () => {
    const s = await startTestSluice();
    try {
      const a = await s.device("rc-a");
      let b = await s.device("rc-b");
      // Both tokens are cached (a session each); the checks that follow a revocation read token keys in batches.
      const sessions = [
        await WsClient.connect(`${s.url}/ws?token=${a}`),
        await WsClient.connect(`${s.url}/ws?token=${b}`),
      ];
      const kv = s.server.sluice.kv;
      const getMany = kv.getMany.bind(kv);
      const gate = Promise.withResolvers<void>();
      let held = 0;
      // Only the check's read of B's first token is held (a new token's own reads must go on).
      const firstB = JSON.stringify(keys.deviceToken(hashSecret(b)));
      kv.getMany = (async (keyList: Deno.KvKey[], options?: { consistency?: Deno.KvConsistencyLevel }) => {
        if (keyList.some((k) => JSON.stringify(k) === firstB)) held++, await gate.promise;
        return await getMany(keyList, options);
      }) as typeof kv.getMany;
      // Revoking A starts a check of every cached token, B's too; it is held at its read meanwhile.
      await revoke(s, "rc-a");
      await waitFor(() => held > 0, 5_000, "the check after A's revocation");
      // B is revoked and created again (as a simulator re-creating its fleet does) and connects with its new token.
      await revoke(s, "rc-b");
      await sessions[1]!.closed;
      b = await s.device("rc-b");
      const renewed = await WsClient.connect(`${s.url}/ws?token=${b}`);
      gate.resolve();
      await new Promise((r) => setTimeout(r, 500));
      // The old check finds B's first token gone: that must not end the session of its new one.
      const reply = await Promise.race([
        renewed.request("Subscribe", { channel: "blog_queuing" }),
        renewed.closed.then(() => null),
      ]);
      assert.equal(reply?.status, "success", "the new token's session is still open");
      await renewed.close();
    } finally {
      await s.close();
    }
  },
);

integration(
  "of concurrent revocations of one device one lands and the others find no device, as one after another would",
  async () => {
    const s = await startTestSluice();
    try {
      await s.device("twice");
      // Straight to the directory: all ten read the device before any of them commits.
      const revokes = await Promise.allSettled(
        Array.from({ length: 10 }, () => s.server.sluice.devices.revoke("twice")),
      );
      assert.equal(revokes.filter((r) => r.status === "fulfilled").length, 1);
      for (const r of revokes) if (r.status === "rejected") assert.match(String(r.reason), /does not exist/);
      await s.device("twice");
      const answers = await Promise.all(
        Array.from({ length: 10 }, () => s.admin("/admin/devices/twice", { method: "DELETE" })),
      );
      await Promise.all(answers.map((r) => r.body?.cancel()));
      assert.deepEqual(answers.map((r) => r.status).sort(), [200, ...Array(9).fill(404)]);
    } finally {
      await s.close();
    }
  },
);
