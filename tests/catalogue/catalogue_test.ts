import assert from "node:assert/strict";
import { ADMIN, integration, post, startTestSluice, waitFor } from "../helpers/sluice.ts";
import { httpCases, wsCases } from "./http_cases.ts";
import { streamHeads } from "./stream_heads.ts";

const VALID = { method: "blog/queues/processor", params: { data: "20,1,45:-73,2026-11-25T10:00:00Z" } };

integration(
  `the bad-input catalogue (${httpCases.length} HTTP and ${wsCases.length} WebSocket cases) is refused cleanly`,
  async () => {
    const s = await startTestSluice({ MAX_BODY_BYTES: "1024" });
    try {
      const tokens = {
        device: await s.device("victim"),
        other: await s.device("other"),
        admin: ADMIN,
        none: "",
        bad: "sl_wrong",
      };
      let valid = 0;
      const sendValid = async () => {
        const res = await post(`${s.url}/channels/blog_queuing/invoke`, tokens.device, VALID);
        assert.equal(res.status, 202, "a valid message right after bad ones still works");
        await res.body?.cancel();
        valid++;
      };
      await sendValid();
      await waitFor(async () => (await s.admin("/pumps/victim")).status === 200);
      const rssBefore = Deno.memoryUsage().rss;

      const wrong: string[] = [];
      for (const [i, c] of httpCases.entries()) {
        const token = tokens[c.as ?? "device"];
        const res = await fetch(`${s.url}${c.path}`, {
          method: c.method ?? "POST",
          headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...c.headers },
          body: c.body === undefined ? undefined : typeof c.body === "string" ? c.body : new Uint8Array(c.body),
        });
        const text = await res.text();
        let code: unknown;
        try {
          code = JSON.parse(text).error?.code;
        } catch {
          code = `not JSON: ${text.slice(0, 80)}`;
        }
        if (res.status !== c.status || code !== c.code) wrong.push(`${c.name}: ${res.status} ${text}`);
        if (i % 25 === 24) await sendValid();
      }

      const ws = new WebSocket(`${s.url.replace("http", "ws")}/ws?token=${tokens.device}`);
      await new Promise((resolve, reject) => (ws.onopen = resolve, ws.onerror = reject));
      const next = () =>
        new Promise<Record<string, unknown>>((resolve) => {
          const timer = setTimeout(() => resolve({ status: "no reply within 5 s" }), 5000);
          ws.onmessage = (e) => (clearTimeout(timer), resolve(JSON.parse(e.data)));
        });
      for (const c of wsCases) {
        const reply = next();
        ws.send(c.frame);
        const r = await reply;
        if (r.status !== "failure" || (r.error as { code: string }).code !== c.code) {
          wrong.push(`ws ${c.name}: ${JSON.stringify(r)}`);
        }
      }
      assert.deepEqual(wrong, [], "every case gets its refusal");
      const ok = next();
      ws.send(
        JSON.stringify({
          id: "v",
          method: "blog/queues/processor",
          params: { channel: "blog_queuing", data: VALID.params.data },
        }),
      );
      assert.equal((await ok).status, "success", "a valid frame right after bad ones still works");
      valid++;
      ws.close();

      await sendValid();
      const heads = await streamHeads(s.server.sluice);
      assert.equal(heads.get("t/blog_queuing/victim"), valid, "only the valid messages became tasks");
      assert.equal(heads.get("t/blog_queuing/other"), undefined, "nothing was queued for the other device");
      assert.equal(heads.get("m/blog_queuing"), undefined, "no bad message was published");
      assert.deepEqual([...heads.keys()].filter((k) => k.startsWith("t/") && k !== "t/blog_queuing/victim"), []);
      const growth = (Deno.memoryUsage().rss - rssBefore) / 1024 / 1024;
      assert.ok(growth < 100, `memory grew ${growth.toFixed(1)} MiB`);
      const health = await (await fetch(`${s.url}/healthz`)).json();
      assert.equal(health.status, "ok");
      console.log(
        `catalogue: ${httpCases.length} HTTP + ${wsCases.length} WS cases refused, RSS +${growth.toFixed(1)} MiB`,
      );
    } finally {
      await s.close();
    }
  },
);
