import assert from "node:assert/strict";
import type { ScriptManifest } from "./manifest.ts";
import type { Script, ScriptRequest } from "./script_api.ts";
import type { ContextHost } from "./script_context.ts";
import { type Outcome, runInOrder, ScriptLoader } from "./script_runner.ts";

const script = (fn: Script) => ({ public: false, load: () => Promise.resolve({ default: fn }) });

function request(method: string, n: number): ScriptRequest {
  return {
    method,
    body: null,
    params: null,
    device: "d1",
    channel: "c",
    taskId: `t.${n}`,
    attempt: 1,
    receivedAt: "2026-11-27T00:00:00.000Z",
  };
}

const host: ContextHost = {
  scripts: new Set(["app/save", "app/peek", "app/read"]),
  settings: { weatherApiUrl: null },
  getDocument: () => Promise.resolve({ value: null, versionstamp: null }),
  httpTimeoutMs: 10_000,
};

Deno.test("a run that changes a document an earlier run of its batch saved, without saving it, changes neither that write nor what later runs read", async () => {
  const manifest: ScriptManifest = {
    "app/save": script((_r, ctx) => ctx.documents.save("c", "a", { n: 1, tags: ["x"] })),
    "app/peek": script(async (_r, ctx) => {
      const doc = (await ctx.documents.get("c", "a")) as { n: number; tags: string[] };
      doc.n = 99; // a local change, never saved
      doc.tags.push("y");
      return doc.n;
    }),
    "app/read": script((_r, ctx) => ctx.documents.get("c", "a")),
  };
  const outcomes: Outcome[] = [];
  await runInOrder(
    ["app/save", "app/peek", "app/read"].map(request),
    new ScriptLoader(manifest),
    host,
    5000,
    (i, o) => outcomes[i] = o,
  );
  assert.ok(outcomes.every((o) => o.ok), JSON.stringify(outcomes));
  const [saved, , read] = outcomes as Extract<Outcome, { ok: true }>[];
  assert.deepEqual(saved!.effects, [{ kind: "saveDocument", collection: "c", id: "a", doc: { n: 1, tags: ["x"] } }]);
  assert.deepEqual(read!.result, { n: 1, tags: ["x"] });
});

Deno.test("a run that timed out can no longer reach out through ctx.http: its call after the limit is refused", async () => {
  const calls: string[] = [];
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen: () => {} }, (req) => {
    calls.push(new URL(req.url).pathname);
    return new Response("ok");
  });
  const url = `http://127.0.0.1:${server.addr.port}`;
  try {
    let late: Promise<unknown> = Promise.resolve();
    const manifest: ScriptManifest = {
      "app/late": script(async (_r, ctx) => {
        await new Promise((r) => setTimeout(r, 300)); // past its 100 ms
        late = ctx.http.fetch(`${url}/late`).then(() => "sent", (err: Error) => err.message);
        return await late;
      }),
      "app/next": script((_r, ctx) => ctx.http.fetch(`${url}/next`).then((r) => r.text())),
    };
    const outcomes: Outcome[] = [];
    const loader = new ScriptLoader(manifest);
    const hostNow = { ...host, scripts: new Set(Object.keys(manifest)) };
    await runInOrder([request("app/late", 1)], loader, hostNow, 100, (i, o) => outcomes[i] = o);
    assert.equal(outcomes[0]!.ok, false);
    assert.match((outcomes[0] as { error: string }).error, /timed out after 100 ms/);
    await new Promise((r) => setTimeout(r, 400));
    assert.equal(await late, "This run has ended; its context can no longer fetch");
    await runInOrder([request("app/next", 2)], loader, hostNow, 1000, (i, o) => outcomes[i] = o);
    assert.deepEqual(calls, ["/next"], "only the run within its limit reached the server");
  } finally {
    await server.shutdown();
  }
});

Deno.test("a long error is cut before where the script threw, which stays at its end", async () => {
  const given = {
    public: false,
    load: () => import("../tests/fixtures/test_scripts.ts").then((m) => ({ default: m.throwsGiven })),
  };
  const outcomes: Outcome[] = [];
  const run = (err: string) =>
    runInOrder(
      [{ ...request("test/given", 1), params: { err } }],
      new ScriptLoader({ "test/given": given }),
      { ...host, scripts: new Set(["test/given"]) },
      5000,
      (i, o) => outcomes[i] = o,
    );
  await run("x".repeat(3000));
  const error = (outcomes[0] as { error: string }).error;
  assert.match(error, /^x+… \(at tests\/fixtures\/test_scripts\.ts:\d+:\d+\)$/);
  assert.equal(error.length, 2000);
  await run("short");
  assert.match((outcomes[0] as { error: string }).error, /^short \(at tests\/fixtures\/test_scripts\.ts:\d+:\d+\)$/);
});
