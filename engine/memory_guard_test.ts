import assert from "node:assert/strict";
import { MemoryGuard, SETTLE_MS } from "./memory_guard.ts";

const MiB = 2 ** 20;

Deno.test("over the memory limit, only a worker holding its thread while the memory grows is stopped", () => {
  const guard = new MemoryGuard(1000 * MiB);
  const over = { rss: 1001 * MiB, others: 600 * MiB };
  assert.equal(guard.verdict({ rss: 1000 * MiB, others: 600 * MiB }, 0, 900 * MiB), "ok");
  assert.equal(guard.verdict(over, 0, guard.growth + 1), "stop-busy");
  assert.equal(guard.verdict(over, 0, 10 * MiB), "over", "a run that computes without allocating is left be");
  assert.equal(guard.verdict(over, 0, undefined), "over", "Sluice's own memory: said, never a stop");
});

Deno.test("after a worker holding its thread was stopped, memory that goes on growing outside the main isolate stops Sluice", () => {
  const guard = new MemoryGuard(1000 * MiB);
  guard.stopped(0);
  const at = (rss: number, others: number, now: number) =>
    guard.verdict({ rss: rss * MiB, others: others * MiB }, now, undefined);
  assert.equal(at(1100, 900, 1000), "over", "the stopped thread is given time to end");
  assert.equal(at(1100, 900, SETTLE_MS), "over", "settled: growth counts from here");
  assert.equal(at(1100 + 300, 900, SETTLE_MS + 1000), "over", "the main isolate's own growth is not the thread's");
  assert.equal(at(1100 + 300, 900 + guard.growth / MiB + 1, SETTLE_MS + 2000), "runaway");
  const fresh = new MemoryGuard(1000 * MiB);
  fresh.stopped(0);
  const nearHeapLimit = { rss: fresh.hard + 1, others: fresh.hard + 1 };
  assert.equal(fresh.verdict(nearHeapLimit, 10, undefined), "runaway", "near a worker's heap limit: at once");
  const never = new MemoryGuard(1000 * MiB);
  assert.equal(never.verdict(nearHeapLimit, 10_000, undefined), "over", "no stopped thread");
  assert.equal(
    never.verdict(nearHeapLimit, 10_000, 0),
    "stop-busy",
    "a busy worker near its heap limit, whatever grew",
  );
});

Deno.test("a script that allocates without end, never yielding, is stopped and failed for good, and never takes the process down", async () => {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", new URL("../tests/fixtures/memory_guard_child.ts", import.meta.url).pathname],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const killer = setTimeout(() => child.kill("SIGKILL"), 60_000);
  const { code, signal, stdout, stderr } = await child.output();
  clearTimeout(killer);
  const said = new TextDecoder().decode(stdout).trim().split("\n").filter(Boolean).map((l) => JSON.parse(l));
  const context = `code ${code}, signal ${signal}\n${JSON.stringify(said)}\n${new TextDecoder().decode(stderr)}`;
  const outcome = said.find((s) => s.outcome)?.outcome;
  assert.equal(outcome?.ok, false, context);
  assert.match(
    outcome.error,
    /^Script was stopped: Sluice's memory passed \d+ MiB \(MEMORY_LIMIT_MB\), growing by \d+ MiB while it held/,
  );
  assert.equal(outcome.permanent, "result", "alone on its worker: it would do it again");
  // Deno 2.5 ends the stopped worker's thread, and memory comes back; Deno 2.9 cannot, and the pool asks for a stop
  // before the process dies of it. Never an abort.
  if (code === 3) {
    assert.match(said.at(-1)?.runaway ?? "", /Sluice stops before the process runs out of memory/, context);
  } else assert.deepEqual([code, said.at(-1)], [0, { recovered: true }], context);
});
