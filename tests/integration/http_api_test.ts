import assert from "node:assert/strict";
import { checkManifest } from "../../sluice.ts";
import { WsClient } from "../helpers/clients.ts";
import { ADMIN, integration, post, startTestSluice, waitFor } from "../helpers/sluice.ts";

interface Case {
  readonly name: string;
  readonly path: string;
  readonly method?: string;
  readonly token?: "admin" | "device" | "other" | "bad" | "none";
  readonly body?: string | Uint8Array;
  readonly headers?: Record<string, string>;
  readonly status: number;
  readonly code: string;
  /** What the error's message must say, where it matters. */
  readonly message?: RegExp;
}

integration("every malformed input gets its status and a JSON error, and the server stays healthy", async () => {
  const s = await startTestSluice({ MAX_BODY_BYTES: "1024" });
  try {
    const tokens = {
      admin: ADMIN,
      device: await s.device("owner"),
      other: await s.device("other"),
      bad: "sl_nope",
      none: "",
    };
    await post(`${s.url}/channels/blog_queuing/invoke`, tokens.device, {
      method: "blog/queues/processor",
      params: { data: "1,1,1:1,2026-11-25T10:00:00Z" },
    }).then((r) => r.json());
    const invoke = "/channels/blog_queuing/invoke";
    const cases: Case[] = [
      { name: "malformed JSON", path: invoke, body: '{"method":', status: 400, code: "malformed_json" },
      {
        name: "invalid UTF-8",
        path: invoke,
        body: new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]),
        status: 400,
        code: "malformed_json",
      },
      { name: "empty body", path: invoke, body: "", status: 400, code: "validation_failed" },
      { name: "array body", path: invoke, body: "[1,2]", status: 400, code: "validation_failed" },
      { name: "method not a string", path: invoke, body: '{"method":5}', status: 400, code: "validation_failed" },
      { name: "method with ..", path: invoke, body: '{"method":"../etc"}', status: 400, code: "validation_failed" },
      { name: "unknown script", path: invoke, body: '{"method":"no/such"}', status: 404, code: "not_found" },
      {
        name: "unknown channel",
        path: "/channels/nope/invoke",
        body: '{"method":"test/echo"}',
        status: 404,
        code: "not_found",
      },
      {
        name: "bad channel name",
        path: "/channels/no%20pe/invoke",
        body: "{}",
        status: 400,
        code: "validation_failed",
      },
      {
        name: "system channel",
        path: "/channels/_pumps/invoke",
        body: '{"method":"test/echo"}',
        status: 403,
        code: "forbidden",
      },
      {
        name: "body too large",
        path: invoke,
        body: JSON.stringify({ method: "test/echo", params: "x".repeat(2000) }),
        status: 413,
        code: "payload_too_large",
      },
      {
        name: "no token",
        path: invoke,
        token: "none",
        body: '{"method":"test/echo"}',
        status: 401,
        code: "unauthorized",
      },
      {
        name: "bad token",
        path: invoke,
        token: "bad",
        body: '{"method":"test/echo"}',
        status: 401,
        code: "unauthorized",
      },
      {
        name: "malformed Authorization",
        path: invoke,
        token: "none",
        headers: { authorization: "Basic abc" },
        body: "{}",
        status: 401,
        code: "unauthorized",
      },
      {
        name: "admin token on invoke",
        path: invoke,
        token: "admin",
        body: '{"method":"test/echo"}',
        status: 403,
        code: "forbidden",
      },
      {
        name: "device on admin route",
        path: "/admin/devices",
        token: "device",
        body: '{"id":"x"}',
        status: 403,
        code: "forbidden",
      },
      {
        name: "device id of wrong type",
        path: "/admin/devices",
        token: "admin",
        body: '{"id":5}',
        status: 400,
        code: "validation_failed",
      },
      {
        name: "device id with a slash",
        path: "/admin/devices",
        token: "admin",
        body: '{"id":"a/b"}',
        status: 400,
        code: "validation_failed",
      },
      {
        name: "unknown field",
        path: "/admin/devices",
        token: "admin",
        body: '{"id":"z","admin":true}',
        status: 400,
        code: "validation_failed",
      },
      {
        name: "duplicate device",
        path: "/admin/devices",
        token: "admin",
        body: '{"id":"owner"}',
        status: 409,
        code: "conflict",
      },
      {
        name: "duplicate channel",
        path: "/admin/channels",
        token: "admin",
        body: '{"name":"blog_queuing"}',
        status: 409,
        code: "conflict",
      },
      {
        name: "reserved channel name",
        path: "/admin/channels",
        token: "admin",
        body: '{"name":"_mine"}',
        status: 400,
        code: "validation_failed",
      },
      {
        name: "bad ordering",
        path: "/admin/channels",
        token: "admin",
        body: '{"name":"c1","ordering":"random"}',
        status: 400,
        code: "validation_failed",
      },
      {
        name: "unknown subscriber script",
        path: "/admin/channels",
        token: "admin",
        body: '{"name":"c2","subscribers":["no/such"]}',
        status: 400,
        code: "validation_failed",
      },
      {
        name: "another device's pump",
        method: "GET",
        path: "/pumps/owner",
        token: "other",
        status: 403,
        code: "forbidden",
      },
      {
        name: "a pump that does not exist, as a device (its existence is not told)",
        method: "GET",
        path: "/pumps/nobody",
        token: "other",
        status: 403,
        code: "forbidden",
        message: /^This pump is not this device's: a device token reads only its own pumps/,
      },
      {
        name: "a channel's path without /invoke or /messages",
        path: "/channels/blog_queuing",
        body: "{}",
        status: 404,
        code: "not_found",
        message: /did you mean POST \/channels\/blog_queuing\/invoke or POST \/channels\/blog_queuing\/messages\?/,
      },
      {
        name: "another device's history",
        method: "GET",
        path: "/pumps/owner/events",
        token: "other",
        status: 403,
        code: "forbidden",
      },
      {
        name: "pump without readings",
        method: "GET",
        path: "/pumps/nobody",
        token: "admin",
        status: 404,
        code: "not_found",
      },
      {
        name: "bad time travel",
        method: "GET",
        path: "/pumps/owner?at=yesterday",
        token: "admin",
        status: 400,
        code: "validation_failed",
      },
      {
        name: "limit over 1000",
        method: "GET",
        path: "/pumps/owner/events?limit=5000",
        token: "admin",
        status: 400,
        code: "validation_failed",
      },
      {
        name: "unknown task",
        method: "GET",
        path: "/tasks/dC9ibG9nX3F1ZXVpbmcvb3duZXI.zz",
        token: "admin",
        status: 404,
        code: "not_found",
      },
      { name: "garbage task id", method: "GET", path: "/tasks/%00%01", token: "admin", status: 404, code: "not_found" },
      {
        name: "unknown public script",
        path: "/no/such/script",
        token: "device",
        body: "{}",
        status: 404,
        code: "not_found",
      },
      {
        name: "private script over HTTP",
        path: "/blog/queues/processor",
        token: "device",
        body: "{}",
        status: 404,
        code: "not_found",
      },
      {
        name: "public script failing",
        path: "/test/fail",
        token: "device",
        body: "{}",
        status: 500,
        code: "script_failed",
      },
      {
        name: "public script refusing input",
        path: "/test/permanent",
        token: "device",
        body: "{}",
        status: 400,
        code: "validation_failed",
      },
      {
        name: "public script without token",
        path: "/test/echo",
        token: "none",
        body: "{}",
        status: 401,
        code: "unauthorized",
      },
      { name: "unknown route", method: "GET", path: "/nothing/here", token: "none", status: 404, code: "not_found" },
      {
        name: "revoking an unknown device",
        method: "DELETE",
        path: "/admin/devices/ghost",
        token: "admin",
        status: 404,
        code: "not_found",
      },
      {
        name: "retrying an unknown dead letter",
        path: "/admin/dead-letters/x/retry",
        token: "admin",
        status: 404,
        code: "not_found",
      },
    ];
    for (const c of cases) {
      const token = tokens[c.token ?? "device"];
      const res = await fetch(`${s.url}${c.path}`, {
        method: c.method ?? "POST",
        headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...c.headers },
        body: c.method === "GET" || c.method === "DELETE" ? undefined : c.body as BodyInit,
      });
      const text = await res.text();
      assert.equal(res.status, c.status, `${c.name}: ${text}`);
      assert.equal(JSON.parse(text).error.code, c.code, `${c.name}: ${text}`);
      if (c.message) assert.match(JSON.parse(text).error.message, c.message, c.name);
    }
    const health = await (await fetch(`${s.url}/healthz`)).json();
    assert.equal(health.status, "ok");
    // A probe that sends a stale token still reads the health (the token is not looked at there).
    const stale = await fetch(`${s.url}/healthz`, { headers: { authorization: "Bearer sl_revoked_long_ago" } });
    assert.deepEqual([stale.status, (await stale.json()).status], [200, "ok"]);
    const ok = await post(`${s.url}${invoke}`, tokens.device, { method: "test/echo" });
    assert.equal(ok.status, 202);
    await ok.body?.cancel();
  } finally {
    await s.close();
  }
});

integration("device tokens are stored only as hashes and a revoked token stops working at once", async () => {
  const s = await startTestSluice();
  try {
    const token = await s.device("rev-1");
    assert.match(token, /^sl_[A-Za-z0-9_-]{43}$/, "256-bit random token");
    const stored = [];
    for await (const e of s.server.sluice.kv.list({ prefix: [] })) {
      stored.push(JSON.stringify([e.key, e.value], (_, v) => typeof v === "bigint" ? String(v) : v));
    }
    assert.ok(!stored.some((line) => line.includes(token)), "the token itself is nowhere in KV");
    const before = await post(`${s.url}/channels/blog_queuing/invoke`, token, { method: "test/echo" });
    assert.equal(before.status, 202);
    await before.body?.cancel();
    const list = await (await s.admin("/admin/devices")).json();
    assert.deepEqual(list.devices.map((d: { id: string }) => d.id), ["rev-1"]);
    assert.equal(list.next, null);
    assert.ok(!JSON.stringify(list).includes("token"));
    const del = await s.admin("/admin/devices/rev-1", { method: "DELETE" });
    assert.equal(del.status, 200);
    await del.body?.cancel();
    const after = await post(`${s.url}/channels/blog_queuing/invoke`, token, { method: "test/echo" });
    assert.equal(after.status, 401);
    await after.body?.cancel();
  } finally {
    await s.close();
  }
});

integration(
  "a device sees only its own pump, tasks and listing; the admin sees all, in pages whose last has no next",
  async () => {
    const s = await startTestSluice();
    try {
      const a = await s.device("own-a");
      const b = await s.device("own-b");
      const task = (await (await post(`${s.url}/channels/blog_queuing/invoke`, a, {
        method: "blog/queues/processor",
        params: { data: "5,1,1:1,2026-11-25T10:00:00Z" },
      })).json()).taskId;
      await post(`${s.url}/blog/queues/feed`, b, { temperature: 6, pressure: 1, coordinates: "2:2" }).then((r) =>
        r.json()
      );
      const get = (path: string, t: string) => fetch(`${s.url}${path}`, { headers: { authorization: `Bearer ${t}` } });
      const own = await get(`/tasks/${task}`, a);
      assert.equal(own.status, 200);
      await own.body?.cancel();
      const theirs = await get(`/tasks/${task}`, b);
      assert.equal(theirs.status, 403);
      await theirs.body?.cancel();
      for (let i = 0; i < 100; i++) {
        const all = await (await s.admin("/pumps")).json();
        if (all.pumps.length === 2) break;
        await new Promise((r) => setTimeout(r, 30));
      }
      const listA = await (await get("/pumps", a)).json();
      assert.deepEqual(listA.pumps.map((p: { id: string }) => p.id), ["own-a"]);
      const all = await (await s.admin("/pumps")).json();
      assert.deepEqual(all.pumps.map((p: { id: string }) => p.id), ["own-a", "own-b"]);
      assert.equal(all.next, null);
      const first = await (await s.admin("/pumps?limit=1")).json();
      assert.deepEqual([first.pumps.map((p: { id: string }) => p.id), first.next], [["own-a"], "own-a"]);
      const last = await (await s.admin("/pumps?limit=1&after=own-a")).json();
      assert.deepEqual([last.pumps.map((p: { id: string }) => p.id), last.next], [["own-b"], null]);
      assert.equal((await (await s.admin("/pumps?limit=2")).json()).next, null);
    } finally {
      await s.close();
    }
  },
);

integration("time travel shows a pump as it was at a version and at a time", async () => {
  const s = await startTestSluice();
  try {
    const token = await s.device("tt");
    for (const [i, t] of [10, 20, 30].entries()) {
      await post(`${s.url}/channels/blog_queuing/invoke`, token, {
        method: "blog/queues/processor",
        params: { data: `${t},1,1:1,2026-11-25T10:00:00Z` },
      }).then((r) => r.json());
      // One reading per commit, so each version has its own time of recording.
      await waitFor(async () => (await (await s.admin("/pumps/tt")).json()).version === i + 1);
    }
    let events: { seq: number; at: string }[] = [];
    for (let i = 0; i < 200 && events.length < 3; i++) {
      const r = await s.admin("/pumps/tt/events");
      events = r.status === 200 ? (await r.json()).events : (await r.body?.cancel(), []);
      await new Promise((r) => setTimeout(r, 25));
    }
    assert.equal(events.length, 3);
    const v2 = await (await s.admin("/pumps/tt?at=2")).json();
    assert.equal(v2.version, 2);
    assert.deepEqual(v2.temperature, { min: 10, max: 20, sum: 30, avg: 15 });
    const ahead = await s.admin("/pumps/tt?at=99");
    assert.equal(ahead.status, 404);
    assert.match((await ahead.json()).error.message, /is at version 3; version 99 does not exist yet/);
    const atTime = await (await s.admin(`/pumps/tt?at=${encodeURIComponent(events[0]!.at)}`)).json();
    // Readings recorded in the same millisecond (one batch) are all part of the state as of that time.
    assert.equal(atTime.version, events.filter((e) => e.at <= events[0]!.at).length);
    const page = await (await s.admin("/pumps/tt/events?from=2&limit=1")).json();
    assert.deepEqual([page.events[0].seq, page.next], [2, 3]);
    const last = await (await s.admin("/pumps/tt/events?from=3&limit=5")).json();
    assert.equal(last.next, null);
  } finally {
    await s.close();
  }
});

integration("the OpenAPI document lists every route with the errors it can give, and /docs renders it", async () => {
  const s = await startTestSluice();
  try {
    const doc = await (await fetch(`${s.url}/openapi.json`)).json();
    for (
      const path of [
        "/healthz",
        "/admin/devices",
        "/admin/devices/{id}",
        "/admin/channels",
        "/admin/channels/{ch}",
        "/channels/{ch}/invoke",
        "/channels/{ch}/messages",
        "/tasks/{id}",
        "/pumps",
        "/pumps/{id}",
        "/pumps/{id}/events",
        "/admin/dead-letters",
        "/admin/dead-letters/{id}/retry",
        "/admin/dead-letters/retry",
        "/admin/dead-letters/{id}",
        "/blog/queues/feed",
        "/channels/{ch}/events",
        "/ws",
      ]
    ) assert.ok(doc.paths[path], `${path} documented`);
    // The WebSocket protocol's frames are described where the route is.
    assert.match(doc.paths["/ws"].get.description, /Authenticate \{token\}; Subscribe \{channel, from\?\}.*Publish/);
    assert.deepEqual(Object.keys(doc.paths["/admin/channels/{ch}"]).sort(), ["delete", "get", "patch"]);
    // Query numbers are documented as the integers they are read as (they come as text: digits only).
    const limit = doc.paths["/pumps"].get.parameters.find((p: { name: string }) => p.name === "limit");
    assert.deepEqual(limit.schema, { type: "integer", minimum: 1, maximum: 1000, default: 100 });
    // A public script's call documents its refusals too.
    assert.deepEqual(
      Object.keys(doc.paths["/blog/queues/feed"].post.responses).sort(),
      ["200", "400", "401", "403", "409", "413", "429", "500", "503"],
    );
    // The errors a route's kind gives before its handler are listed too.
    const statuses = (path: string, method: string) => Object.keys(doc.paths[path][method].responses).sort();
    const ingest = ["202", "400", "401", "403", "404", "413", "429", "500", "503"];
    assert.deepEqual(statuses("/channels/{ch}/invoke", "post"), ingest);
    assert.deepEqual(statuses("/channels/{ch}/messages", "post"), ingest);
    assert.deepEqual(statuses("/healthz", "get"), ["200", "500", "503"]);
    assert.equal(
      doc.paths["/admin/devices"].get.responses["403"].description,
      "The token is valid but not the admin's",
    );
    const docs = await fetch(`${s.url}/docs`);
    assert.equal(docs.status, 200);
    assert.match(await docs.text(), /openapi\.json/);
  } finally {
    await s.close();
  }
});

Deno.test("a script path that clashes with a reserved route stops start-up with a clear message", () => {
  const load = () => Promise.resolve({ default: () => null });
  assert.throws(
    () => checkManifest({ "admin/tools": { public: true, load } }),
    /clashes with Sluice's reserved route \/admin/,
  );
  assert.throws(() => checkManifest({ "bad path": { public: false, load } }), /not valid/);
  assert.doesNotThrow(() => checkManifest({ "blog/queues/feed": { public: true, load } }));
});

integration("repeated wrong tokens from one address are answered ever more slowly; valid ones are not", async () => {
  const s = await startTestSluice();
  try {
    const token = await s.device("bf");
    const timed = async (t: string) => {
      const started = performance.now();
      const res = await fetch(`${s.url}/pumps`, { headers: { authorization: `Bearer ${t}` } });
      await res.body?.cancel();
      return { status: res.status, ms: performance.now() - started };
    };
    const wrong = [];
    for (let i = 0; i < 13; i++) wrong.push(await timed(`sl_guess${i}`));
    assert.ok(wrong.every((w) => w.status === 401));
    assert.ok(wrong.slice(0, 10).every((w) => w.ms < 100), "the first failures are not delayed");
    assert.ok(wrong[12]!.ms >= 400, `the 13th failure waited ${wrong[12]!.ms} ms`);
    const right = await timed(token);
    assert.equal(right.status, 200);
    assert.ok(right.ms < 400, "a valid token is not slowed down");
  } finally {
    await s.close();
  }
});

integration("past MAX_HTTP_IN_FLIGHT requests at once, HTTP answers 503 at once instead of queueing", async () => {
  const s = await startTestSluice({ MAX_HTTP_IN_FLIGHT: "2" });
  try {
    const token = await s.device("cap");
    const answers = await Promise.all(
      Array.from(
        { length: 4 },
        () => post(`${s.url}/test/nap`, token, {}).then(async (r) => [r.status, await r.json()]),
      ),
    );
    const statuses = answers.map(([status]) => status).sort();
    assert.deepEqual(statuses, [200, 200, 503, 503]);
    const refused = answers.find(([status]) => status === 503)![1] as { error: { code: string } };
    assert.equal(refused.error.code, "unavailable");
    const after = await post(`${s.url}/test/nap`, token, {});
    assert.equal(after.status, 200, "the cap frees as requests finish");
    await after.body?.cancel();
  } finally {
    await s.close();
  }
});

integration("a body nested thousands of levels deep (12 KB) is refused with a 400 and Sluice goes on", async () => {
  const s = await startTestSluice();
  try {
    const token = await s.device("deep");
    const deep = "[".repeat(6000) + "]".repeat(6000);
    for (
      const [path, body] of [
        ["/channels/blog_queuing/messages", deep],
        ["/channels/blog_queuing/invoke", `{"method":"blog/queues/processor","params":{"data":${deep}}}`],
        ["/blog/queues/feed", deep],
      ]
    ) {
      const res = await post(`${s.url}${path}`, token, body);
      assert.equal(res.status, 400, path);
      assert.match((await res.json()).error.message, /deeper than 64 levels/);
    }
    const ok = await post(`${s.url}/channels/blog_queuing/messages`, token, { fine: [[1]] });
    assert.equal(ok.status, 202);
    assert.equal((await fetch(`${s.url}/healthz`).then((r) => r.json())).status, "ok");
  } finally {
    await s.close();
  }
});

integration("a bare CSV reading that is not sent as a JSON string gets a 400 that says how to send it", async () => {
  const s = await startTestSluice();
  try {
    const token = await s.device("csv-pump");
    const csv = "22.5,1.3,45.50:-73.56,2026-11-25T10:01:00Z";
    const res = await post(`${s.url}/channels/blog_queuing/invoke`, token, csv);
    assert.equal(res.status, 400);
    assert.match((await res.json()).error.message, /a bare CSV reading goes as a JSON string: "22\.5,1\.3/);
    const ok = await post(`${s.url}/channels/blog_queuing/invoke`, token, JSON.stringify(csv));
    assert.equal(ok.status, 202);
    const slash = await post(`${s.url}/channels/blog_queuing/invoke/`, token, JSON.stringify(csv));
    assert.equal(slash.status, 202, "a trailing slash is the same route");
  } finally {
    await s.close();
  }
});

integration(
  "a gzip body is unpacked before it is read (curl --compressed-style gateways), its size limit unpacked",
  async () => {
    const s = await startTestSluice();
    try {
      const token = await s.device("gz-pump");
      const gzip = async (text: string) =>
        new Uint8Array(
          await new Response(new Blob([text]).stream().pipeThrough(new CompressionStream("gzip"))).arrayBuffer(),
        );
      const res = await post(`${s.url}/test/echo`, token, await gzip('{"n":1}'), { "content-encoding": "gzip" });
      assert.equal(res.status, 200);
      assert.deepEqual((await res.json()).echoed, { n: 1 });
      const big = await post(`${s.url}/test/echo`, token, await gzip(`"${" ".repeat(2_000_000)}"`), {
        "content-encoding": "gzip",
      });
      assert.equal(big.status, 413);
      assert.match((await big.json()).error.message, /MAX_BODY_BYTES/);
    } finally {
      await s.close();
    }
  },
);

integration("a public script whose write Sluice refuses answers 500 script_failed, naming the script", async () => {
  const s = await startTestSluice();
  try {
    const token = await s.device("inl");
    const cases: [string, RegExp][] = [
      ["test/nowhere-inline", /test\/nowhere-inline" made a write Sluice refused: Channel "no_such_channel" does not/],
      ["test/forbidden-inline", /test\/forbidden-inline" made a write Sluice refused: .*_pumps.* belongs to Sluice/],
    ];
    for (const [script, message] of cases) {
      const res = await post(`${s.url}/${script}`, token, {});
      assert.equal(res.status, 500, script);
      const { error } = await res.json();
      assert.equal(error.code, "script_failed");
      assert.match(error.message, message);
    }
  } finally {
    await s.close();
  }
});

integration("a channel's subscribers named twice are kept once", async () => {
  const s = await startTestSluice();
  try {
    const res = await s.admin("/admin/channels", {
      method: "POST",
      body: JSON.stringify({ name: "dup", subscribers: ["test/collect", "test/collect"] }),
    });
    assert.equal(res.status, 201);
    assert.deepEqual((await res.json()).subscribers, ["test/collect"]);
  } finally {
    await s.close();
  }
});

integration("the device list pages on with next, by id, without tokens", async () => {
  const s = await startTestSluice();
  try {
    for (const id of ["d-3", "d-1", "d-5", "d-2", "d-4"]) await s.device(id);
    const ids: string[] = [], sizes: number[] = [];
    let url: string | null = "/admin/devices?limit=2";
    while (url) {
      const page: { devices: { id: string }[]; next: string | null } = await (await s.admin(url)).json();
      ids.push(...page.devices.map((d) => d.id));
      sizes.push(page.devices.length);
      url = page.next ? `/admin/devices?limit=2&after=${page.next}` : null;
    }
    assert.deepEqual([ids, sizes], [["d-1", "d-2", "d-3", "d-4", "d-5"], [2, 2, 1]]);
    // One device, without its token; a revoked one is gone.
    const one = await (await s.admin("/admin/devices/d-3")).json();
    assert.deepEqual(Object.keys(one).sort(), ["createdAt", "id"]);
    assert.equal(one.id, "d-3");
    assert.equal((await s.admin("/admin/devices/d-3", { method: "DELETE" })).status, 200);
    const gone = await s.admin("/admin/devices/d-3");
    assert.equal(gone.status, 404);
    assert.match((await gone.json()).error.message, /Device "d-3" does not exist \(or was revoked\)/);
  } finally {
    await s.close();
  }
});

integration(
  "a public script's calls count against the device's RATE_LIMIT, over HTTP and WebSocket, as its invokes do",
  async () => {
    const s = await startTestSluice({ RATE_LIMIT: "1/m" }); // a bucket of one: the second message is over it
    try {
      const token = await s.device("chatty");
      assert.equal((await post(`${s.url}/test/echo`, token, { n: 1 })).status, 200);
      const over = await post(`${s.url}/test/echo`, token, { n: 2 });
      assert.equal(over.status, 429);
      assert.equal((await over.json()).error.code, "rate_limited");
      // The same bucket as the device's invokes and publishes.
      const invoke = await post(`${s.url}/channels/blog_queuing/invoke`, token, { method: "test/echo", params: {} });
      assert.equal(invoke.status, 429);
      await invoke.body?.cancel();
      const ws = await WsClient.connect(`${s.url}/ws?token=${token}`);
      try {
        const reply = await ws.request("test/echo", { n: 3 });
        assert.equal(reply.status, "failure", JSON.stringify(reply));
        assert.equal((reply.error as { code: string }).code, "rate_limited");
      } finally {
        await ws.close();
      }
      const metrics = await s.admin("/metrics").then((r) => r.text());
      assert.match(metrics, /sluice_ingest_refused_total\{protocol="http",code="rate_limited"\} 2/);
      // Another device has its own bucket.
      assert.equal((await post(`${s.url}/test/echo`, await s.device("quiet"), { n: 1 })).status, 200);
    } finally {
      await s.close();
    }
  },
);
