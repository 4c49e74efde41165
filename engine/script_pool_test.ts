import assert from "node:assert/strict";
import { brokenManifest } from "../tests/fixtures/broken_manifest.ts";
import { testManifest } from "../tests/fixtures/manifest.ts";
import type { ScriptManifest } from "./manifest.ts";
import { type ExecutorOptions, InProcessExecutor, WorkerPool } from "./script_pool.ts";
import { SETTLE_MS } from "./memory_guard.ts";

/** A pool on a fixture manifest and worker entry, its log lines kept. */
function loggedPool(
  manifest: ScriptManifest,
  entry: string,
  workers: number,
  timeoutMs = 5000,
  memory: Pick<ExecutorOptions, "memoryLimit" | "onRunaway"> = {},
) {
  const lines: string[] = [];
  const pool = new WorkerPool({
    manifest,
    workerUrl: new URL(`../tests/fixtures/${entry}`, import.meta.url),
    settings: { weatherApiUrl: null },
    timeoutMs,
    getDocument: () => Promise.resolve({ value: null, versionstamp: null }),
    workers,
    log: (line) => lines.push(line),
    ...memory,
  });
  return { pool, lines };
}

const request = (method: string) => ({ method, body: 1, params: 1, device: "d", attempt: 1, receivedAt: "" });

Deno.test("a manifest entry whose module cannot be loaded is said once at start-up, and the other scripts run", async () => {
  const { pool, lines } = loggedPool(brokenManifest, "broken_worker_entry.ts", 2);
  try {
    const [outcome] = await pool.run([request("app/fine")]);
    assert.equal(outcome?.ok, true);
    for (let i = 0; i < 100 && lines.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
    await new Promise((r) => setTimeout(r, 200)); // the second worker is ready too: still one line
    assert.equal(lines.length, 1, lines.join("\n"));
    assert.match(
      lines[0]!,
      /^Script app\/typo cannot be loaded: .*test_scirpts\.ts.* \(fix it, then restart Sluice\)$/,
    );
    assert.ok(!lines[0]!.includes("file://") && !lines[0]!.includes(Deno.cwd()), "named from Sluice's folder");
    // Its runs fail saying why, naming the file from Sluice's folder: never the server's own path.
    const [typo] = await pool.run([request("app/typo")]);
    const error = typo?.ok === false ? typo.error : "";
    assert.match(error, /tests\/fixtures\/test_scirpts\.ts/);
    assert.ok(!error.includes("file://") && !error.includes(Deno.cwd()), error);
  } finally {
    pool.close();
  }
});

Deno.test("a run busy for longer than the silence limit but within its time limit is not taken for a gone worker", async () => {
  const { pool, lines } = loggedPool(testManifest, "worker_entry.ts", 1, 5000);
  try {
    assert.equal((await pool.run([request("test/echo")]))[0]?.ok, true); // the worker is up, and idle after
    await new Promise((r) => setTimeout(r, 250));
    const [outcome] = await pool.run([{ ...request("test/spins"), params: { ms: 2600 } }]);
    assert.deepEqual(outcome?.ok && outcome.result, { spun: 2600 });
    assert.deepEqual(lines, []);
  } finally {
    pool.close();
  }
});

Deno.test("what the pool cannot read from a worker is logged once and ignored, and scripts run", async () => {
  const { pool, lines } = loggedPool(testManifest, "garbled_worker_entry.ts", 1);
  try {
    assert.equal((await pool.run([request("test/echo")]))[0]?.ok, true);
    assert.equal(lines.length, 1, lines.join("\n"));
    assert.match(lines[0]!, /^Script worker sent what Sluice does not read \(.*\); ignored/);
  } finally {
    pool.close();
  }
});

Deno.test("an error a script leaves in a timer or a promise after its run is logged, and the worker goes on", async () => {
  const { pool, lines } = loggedPool(testManifest, "worker_entry.ts", 1);
  try {
    assert.equal((await pool.run([request("test/stray")]))[0]?.ok, true);
    for (let i = 0; i < 100 && lines.length < 2; i++) await new Promise((r) => setTimeout(r, 20));
    // Each with where in the script it failed.
    assert.deepEqual(
      lines.map((l) =>
        /failed where no run could catch it: (.*) \(at tests\/fixtures\/test_scripts\.ts:\d+:\d+\)$/.exec(l)?.[1]
      )
        .sort(),
      ["Late failure in a timer", "Rejected and never awaited"],
    );
    assert.equal((await pool.run([request("test/echo")]))[0]?.ok, true);
  } finally {
    pool.close();
  }
});

Deno.test("a busy loop stopped is logged with its script, task and attempt, so the operator knows which", async () => {
  const { pool, lines } = loggedPool(testManifest, "worker_entry.ts", 1, 200);
  try {
    const [outcome] = await pool.run([{ ...request("test/busy"), taskId: "dGFzaw.7", attempt: 3 }]);
    assert.equal(outcome?.ok, false);
    assert.equal(!outcome?.ok && outcome?.permanent, "result", "a loop that never yields is not retried");
    assert.deepEqual(lines, [
      "Script test/busy (task dGFzaw.7, attempt 3) ran past its time limit of 200 ms without yielding and was stopped (busy loop?); not retried: it would loop again",
    ]);
    const [inline] = await pool.run([request("test/busy")]);
    assert.equal(inline?.ok, false);
    assert.equal(
      lines[1],
      "Script test/busy (a call, attempt 1) ran past its time limit of 200 ms without yielding and was stopped (busy loop?); not retried: it would loop again",
    );
  } finally {
    pool.close();
  }
});

Deno.test("a run awaiting on a busy loop's worker is not failed for good: the pool cannot tell which of them loops", async () => {
  const { pool } = loggedPool(testManifest, "worker_entry.ts", 1, 200);
  try {
    const run = (method: string, params: unknown, taskId: string) =>
      pool.run([{ ...request(method), body: params, params, taskId }]);
    const awaiting = run("test/slow", { ms: 150 }, "dGFzaw.1");
    await new Promise((r) => setTimeout(r, 20));
    const looping = run("test/busy", 1, "dGFzaw.2");
    const [[a], [b]] = await Promise.all([awaiting, looping]);
    for (const o of [a, b]) assert.ok(o && (o.ok || o.permanent === undefined), JSON.stringify(o));
  } finally {
    pool.close();
  }
});

Deno.test("in-process, a ctx.http call a run does not wait for is cut at its end without ending the process", async () => {
  let hits = 0;
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen: () => {} }, async () => {
    hits++;
    await new Promise((r) => setTimeout(r, 500));
    return new Response("late");
  });
  const manifest: ScriptManifest = {
    "app/hook": {
      public: false,
      load: () =>
        Promise.resolve({
          default: (_r, ctx) => {
            ctx.http.fetch(`http://127.0.0.1:${server.addr.port}/hook`); // not awaited: a webhook
            return { sent: true };
          },
        }),
    },
  };
  const executor = new InProcessExecutor({
    manifest,
    workerUrl: new URL("../tests/fixtures/worker_entry.ts", import.meta.url),
    settings: { weatherApiUrl: null },
    timeoutMs: 1000,
    getDocument: () => Promise.resolve({ value: null, versionstamp: null }),
  });
  try {
    const [outcome] = await executor.run([request("app/hook")]);
    assert.equal(outcome?.ok, true);
    // An unhandled rejection here would fail this test (as it would stop Sluice).
    await new Promise((r) => setTimeout(r, 700));
    assert.ok(hits <= 1);
  } finally {
    await server.shutdown();
  }
});

Deno.test("a script that tries to end its worker (Deno.exit, close) fails at once saying so, and the worker runs on", async () => {
  const { pool, lines } = loggedPool(testManifest, "worker_entry.ts", 1, 5000);
  try {
    for (const [how, call] of [["exit", "Deno.exit"], ["close", "close"]]) {
      const started = performance.now();
      const [outcome] = await pool.run([{ ...request("test/ends-worker"), params: { how } }]);
      assert.ok(performance.now() - started < 2000, "not left to its time limit");
      assert.equal(outcome?.ok, false);
      assert.match(outcome.ok ? "" : outcome.error, new RegExp(`^Scripts cannot call ${call}: the worker runs other`));
    }
    assert.equal((await pool.run([request("test/echo")]))[0]?.ok, true);
    assert.deepEqual(lines, []);
  } finally {
    pool.close();
  }
});

Deno.test("a script that gives every object a toJSON fails and has it undone: no later run's values are copied through it", async () => {
  const { pool } = loggedPool(testManifest, "worker_entry.ts", 1, 5000);
  try {
    const [tampered] = await pool.run([request("test/tampers")]);
    assert.equal(tampered?.ok, false);
    assert.match(tampered.ok ? "" : tampered.error, /^A script changed Object\.prototype\.toJSON, which every value/);
    assert.equal(tampered.ok ? undefined : tampered.permanent, undefined, "the run goes again: it may be a victim");
    const [echo] = await pool.run([{ ...request("test/echo"), body: { a: [1, { b: 2 }] } }]);
    assert.deepEqual(echo?.ok && echo.result, { echoed: { a: [1, { b: 2 }] }, device: "d", attempt: 1 });
  } finally {
    pool.close();
  }
});

Deno.test("a toJSON given to every Map for good has its worker replaced: the next run's Map is not copied through it", async () => {
  const { pool, lines } = loggedPool(testManifest, "worker_entry.ts", 1, 5000);
  try {
    const [tampered] = await pool.run([request("test/tampers-for-good")]);
    assert.match(
      tampered?.ok ? "" : tampered!.error,
      /changed Map\.prototype\.toJSON, .*it cannot be undone, so the worker/,
    );
    for (let i = 0; i < 100 && !lines.some((l) => l.startsWith("Script worker replaced")); i++) {
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.ok(lines.some((l) => l.startsWith("Script worker replaced: a script changed Map.prototype.toJSON")));
    const [echo] = await pool.run([{ ...request("test/echo"), body: { m: new Map([[1, 2]]) } }]);
    assert.deepEqual(echo?.ok && echo.result, { echoed: { m: {} }, device: "d", attempt: 1 }, "as JSON copies a Map");
  } finally {
    pool.close();
  }
});

Deno.test("over the memory limit, a run busy without allocating is not blamed, nor does a stopped one's thread stop Sluice", async () => {
  const runaway: string[] = [];
  // Always over, by Sluice's own memory (and well under the hard limit, a limit and a growth above).
  const memory = { memoryLimit: Math.floor(Deno.memoryUsage().rss / 2), onRunaway: (m: string) => runaway.push(m) };
  const timed = loggedPool(testManifest, "worker_entry.ts", 1, 300, memory);
  try {
    // Stopped at its time limit; its thread (which Deno 2.9 cannot stop) ends by itself, having allocated nothing.
    const [stopped] = await timed.pool.run([{ ...request("test/spins"), params: { ms: 1500 } }]);
    assert.equal(stopped?.ok, false);
    await new Promise((r) => setTimeout(r, SETTLE_MS + 1500));
    assert.deepEqual(runaway, []);
  } finally {
    timed.pool.close();
  }
  const patient = loggedPool(testManifest, "worker_entry.ts", 1, 5000, memory);
  try {
    const [outcome] = await patient.pool.run([{ ...request("test/spins"), params: { ms: 1500 } }]);
    assert.deepEqual(outcome?.ok && outcome.result, { spun: 1500 }, JSON.stringify(outcome));
    assert.ok(patient.lines.some((l) => /over \d+ MiB \(MEMORY_LIMIT_MB\), with no script run growing it/.test(l)));
    assert.deepEqual(runaway, []);
  } finally {
    patient.pool.close();
  }
});
