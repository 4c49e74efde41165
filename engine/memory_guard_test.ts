import assert from "node:assert/strict";
import { hardMemoryLimit, memoryVerdict, RUNAWAY_MS } from "./memory_guard.ts";

Deno.test("over the memory limit, a worker holding its thread is stopped; after such a stop, memory that stays over stops Sluice", () => {
  const limit = 100 * 2 ** 20, over = limit + 1;
  const idle = { busyWorker: false, stoppedBusy: false, overSince: 0 };
  assert.equal(memoryVerdict(limit, limit, 0, { ...idle, busyWorker: true }), "ok");
  assert.equal(memoryVerdict(over, limit, 0, { ...idle, busyWorker: true }), "stop-busy");
  assert.equal(memoryVerdict(over, limit, 60_000, idle), "over", "Sluice's own memory: said, never a stop");
  const stopped = { ...idle, stoppedBusy: true };
  assert.equal(memoryVerdict(over, limit, RUNAWAY_MS, stopped), "over", "a stopped thread is given time to end");
  assert.equal(memoryVerdict(over, limit, RUNAWAY_MS + 1, stopped), "runaway");
  assert.equal(memoryVerdict(hardMemoryLimit(limit) + 1, limit, 0, stopped), "runaway", "past the hard limit at once");
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
  assert.match(outcome.error, /^Script was stopped: Sluice's memory passed \d+ MiB \(MEMORY_LIMIT_MB\) while it held/);
  assert.equal(outcome.permanent, "result", "alone on its worker: it would do it again");
  // Deno 2.5 ends the stopped worker's thread, and memory comes back; Deno 2.9 cannot, and the pool asks for a stop
  // before the process dies of it. Never an abort.
  if (code === 3) assert.match(said.at(-1)?.runaway ?? "", /Sluice stops cleanly before the process runs out/, context);
  else assert.deepEqual([code, said.at(-1)], [0, { recovered: true }], context);
});
