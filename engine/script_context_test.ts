import assert from "node:assert/strict";
import type { ScriptRequest } from "./script_api.ts";
import { bufferedContext, type ContextHost } from "./script_context.ts";

const request: ScriptRequest = {
  method: "app/x",
  body: null,
  params: null,
  device: "d1",
  channel: "c",
  taskId: "t.1",
  attempt: 1,
  receivedAt: "2026-11-27T00:00:00.000Z",
};

function host(over: Partial<ContextHost> = {}): ContextHost {
  return {
    scripts: new Set(["app/x"]),
    settings: { weatherApiUrl: null },
    getDocument: () => Promise.resolve({ value: { n: 0 }, versionstamp: "00000000000000010000" }),
    httpTimeoutMs: 10_000,
    ...over,
  };
}

Deno.test("a script's log lines hide token-shaped text, in strings and in objects", () => {
  const { ctx } = bufferedContext(request, host());
  const token = "sl_abcdefghijklmnopqrstuvwxyz012345";
  const lines: string[] = [];
  const info = console.info;
  console.info = (...a: unknown[]) => lines.push(a.join(" "));
  try {
    ctx.log.info("got", token, { body: { token }, n: 1 });
  } finally {
    console.info = info;
  }
  assert.equal(lines.length, 1);
  assert.doesNotMatch(lines[0]!, /abcdefghijklmnop/, lines[0]);
  assert.match(lines[0]!, /^\S+ info {2}\[app\/x t\.1\] got sl_… \{ body: \{ token: "sl_…" \}, n: 1 \}$/, lines[0]);
});

Deno.test("a script's log line cannot pass for another: a line break in what it logs goes on an indented line", () => {
  const { ctx } = bufferedContext(request, host());
  const lines: string[] = [];
  const warn = console.warn;
  console.warn = (...a: unknown[]) => lines.push(a.join(" "));
  try {
    ctx.log.warn("bad reading:", "A\n2026-11-27T23:59:59.000Z error  FORGED\u0000");
  } finally {
    console.warn = warn;
  }
  assert.equal(lines.length, 1);
  assert.deepEqual(lines[0]!.split("\n").slice(1), ["    2026-11-27T23:59:59.000Z error  FORGED\\u{0}"]);
});

Deno.test("a run's log is bounded: long lines are cut saying how much, and past 1000 lines one more says the rest are left out", () => {
  const { ctx } = bufferedContext(request, host());
  const lines: string[] = [];
  const info = console.info;
  console.info = (...a: unknown[]) => lines.push(a.join(" "));
  try {
    ctx.log.info("x".repeat(100_000));
    for (let i = 0; i < 5000; i++) ctx.log.info("line", i);
  } finally {
    console.info = info;
  }
  assert.match(lines[0]!, /\] x{8192}… \(91808 more characters\)$/);
  assert.equal(lines.length, 1001);
  assert.match(lines[999]!, /\] line 998$/);
  assert.match(lines[1000]!, /\] \(this run's further lines are not logged: 1000 at most a run\)$/);
});

Deno.test("logging never fails a run: a value whose custom inspect throws is named, not shown", () => {
  const { ctx } = bufferedContext(request, host());
  const lines: string[] = [];
  const info = console.info;
  console.info = (...a: unknown[]) => lines.push(a.join(" "));
  const nasty = {
    [Symbol.for("Deno.customInspect")]() {
      throw new Error("no");
    },
  };
  try {
    ctx.log.info("value:", nasty);
  } finally {
    console.info = info;
  }
  assert.match(lines[0]!, /\] value: \[a value that cannot be shown\]$/);
});

Deno.test("ctx.http.fetch times out even when the script passes a signal of its own", async () => {
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen: () => {} }, async () => {
    await new Promise((r) => setTimeout(r, 1000));
    return new Response("late");
  });
  try {
    const { ctx } = bufferedContext(request, host({ httpTimeoutMs: 10_000 }));
    const started = Date.now();
    const err = await ctx.http.fetch(`http://127.0.0.1:${server.addr.port}/slow?key=secret`, {
      signal: new AbortController().signal,
      timeoutMs: 150,
    }).then(() => null, (e: unknown) => e);
    assert.equal((err as Error | null)?.name, "TimeoutError", String(err));
    assert.ok(Date.now() - started < 2000, `took ${Date.now() - started} ms`);
    // Said with what was called and the limit, not the query (it may hold a key).
    assert.equal(
      (err as Error).message,
      `ctx.http.fetch of http://127.0.0.1:${server.addr.port}/slow had no answer within 150 ms (timeoutMs; 10000 ms ` +
        "when not given)",
    );
  } finally {
    await server.shutdown();
  }
});

Deno.test("a reading with a null outside temperature is a PumpReading, as ctx.pumps.record accepts it", () => {
  const { ctx, seal } = bufferedContext(request, host());
  ctx.pumps.record({
    temperature: 20,
    pressure: 1,
    coordinates: { lat: 1, lon: 2 },
    time: "2026-11-27T00:00:00Z",
    outsideTemperature: null,
  });
  assert.deepEqual(seal().effects.map((e) => e.kind === "recordReading" && e.reading.outsideTemperature), [null]);
});

Deno.test("a run reads back its own writes, as copies its later changes do not reach", async () => {
  const { ctx, seal } = bufferedContext(request, host());
  const doc = { n: 1 };
  ctx.documents.save("c", "a", doc);
  doc.n = 99;
  const read = (await ctx.documents.get("c", "a")) as { n: number };
  assert.deepEqual(read, { n: 1 });
  read.n = 5;
  assert.deepEqual(await ctx.documents.get("c", "a"), { n: 1 });
  ctx.documents.delete("c", "a");
  assert.equal(await ctx.documents.get("c", "a"), null);
  assert.deepEqual(await ctx.documents.get("c", "b"), { n: 0 }, "another document is read from the store");
  const { effects, reads } = seal();
  assert.deepEqual(effects.map((e) => e.kind), ["saveDocument", "deleteDocument"]);
  assert.deepEqual(reads.map((r) => r.id), ["b"], "only documents read from the store are checked at the commit");
});

Deno.test("a call of ctx.http still going when its run ends is aborted", async () => {
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen: () => {} }, async () => {
    await new Promise((r) => setTimeout(r, 1000));
    return new Response("late");
  });
  try {
    const { ctx, seal } = bufferedContext(request, host());
    const started = Date.now();
    const call = ctx.http.fetch(`http://127.0.0.1:${server.addr.port}/`).then(() => null, (e: Error) => e.message);
    await new Promise((r) => setTimeout(r, 50));
    seal();
    assert.equal(await call, "This run has ended (timed out, or over)");
    assert.ok(Date.now() - started < 900, `took ${Date.now() - started} ms`);
  } finally {
    await server.shutdown();
  }
});

Deno.test("ctx.http.fetch calls only absolute http(s) URLs: a file, a relative path or a number is refused", async () => {
  const { ctx } = bufferedContext(request, host());
  const refusal = (url: unknown) =>
    ctx.http.fetch(url as string).then(() => "fetched", (e: Error) => `${e.name}: ${e.message}`);
  assert.equal(
    await refusal("../deno.json"),
    'TypeError: ctx.http.fetch needs an absolute http:// or https:// URL, not "../deno.json"',
  );
  assert.equal(
    await refusal("file:///etc/hostname"),
    'TypeError: ctx.http.fetch calls http:// and https:// URLs only, not file: ("file:///etc/hostname")',
  );
  assert.equal(
    await refusal(new URL("file:///etc/hostname")),
    'TypeError: ctx.http.fetch calls http:// and https:// URLs only, not file: ("file:///etc/hostname")',
  );
  assert.equal(await refusal(42), 'TypeError: ctx.http.fetch needs a URL (a string or a URL), not "42"');
  const badInit = (init: unknown) =>
    ctx.http.fetch("http://127.0.0.1:9/", init as RequestInit).then(() => "fetched", (e: Error) => e.message);
  assert.equal(await badInit(null), "ctx.http.fetch takes its options as an object, not null");
  assert.equal(await badInit(-5 as unknown), "ctx.http.fetch takes its options as an object, not number");
  for (const timeoutMs of [-5, 0, "abc", Infinity, NaN, 2 ** 31]) {
    assert.match(
      await badInit({ timeoutMs }),
      /^ctx\.http\.fetch's timeoutMs is milliseconds from 1 to 2\^31 − 1, not /,
    );
  }
});

Deno.test("ctx.documents takes a string (or a number) as collection and id, and says so for anything else", async () => {
  const { ctx, seal } = bufferedContext(request, host());
  assert.throws(
    () => ctx.documents.save({ x: 1 } as unknown as string, "a", {}),
    { name: "TypeError", message: "ctx.documents.save: the collection must be a string (or a number), not an object" },
  );
  await assert.rejects(
    () => (ctx.documents.get as (...a: unknown[]) => Promise<unknown>)(),
    { name: "TypeError", message: "ctx.documents.get: the collection must be a string (or a number), not undefined" },
  );
  assert.throws(() => ctx.documents.delete("c", ["a"] as unknown as string), /the id must be .*, not an array/);
  ctx.documents.save("pumps", 42 as unknown as string, { n: 1 });
  assert.deepEqual(await ctx.documents.get("pumps", "42"), { n: 1 });
  assert.deepEqual(seal().effects.map((e) => e.kind), ["saveDocument"]);
});
