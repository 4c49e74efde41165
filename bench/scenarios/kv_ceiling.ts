import type { ScenarioResult } from "../result.ts";

/** Batched atomic sets/s on the benchmark's disk: 500 event-sized values a commit, for `seconds`. */
export async function kvCeiling(seconds: number): Promise<ScenarioResult & { setsPerSec: number }> {
  const dir = await Deno.makeTempDir({ prefix: "sluice-bench-kv-" });
  const kv = await Deno.openKv(`${dir}/ceiling.kv`);
  const value = {
    type: "TaskQueued",
    data: {
      method: "blog/queues/processor",
      params: { data: "21.5,1.25,45.5017:-73.5673,2026-11-25T10:00:00.000Z" },
      device: "bench-1",
      receivedAt: Date.now(),
      protocol: "http",
    },
    at: Date.now(),
  };
  let sets = 0, i = 0;
  const started = performance.now();
  while (performance.now() - started < seconds * 1000) {
    const op = kv.atomic();
    for (let k = 0; k < 500; k++, i++) op.set(["ev", `t/blog_queuing/bench-${i % 64}`, i], value);
    await op.commit();
    sets += 500;
  }
  const setsPerSec = Math.round(sets / ((performance.now() - started) / 1000));
  kv.close();
  await Deno.remove(dir, { recursive: true });
  return { scenario: "KV group-commit ceiling (500 sets/commit)", rate: setsPerSec, unit: "sets/s", setsPerSec };
}
