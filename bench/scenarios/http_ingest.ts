import { cpuMeter, kvCommitFigures, kvCommitTotals, rssMiB } from "../measure.ts";
import type { ScenarioResult } from "../result.ts";
import { benchSluice, createDevices, tasksDone } from "../sluice.ts";

/** Durable ingest over HTTP: `wrk` with 64 connections POSTs invokes, each acked after its commit. */
export async function httpIngest(weatherUrl: string, seconds: number, kvCeiling: number): Promise<ScenarioResult> {
  const b = await benchSluice(weatherUrl, { MQTT_PORT: "off" });
  try {
    const tokens = await createDevices(b.sluice.url, "http", 64);
    const script = await Deno.makeTempFile({ suffix: ".lua" });
    await Deno.writeTextFile(script, wrkScript(tokens));
    const pid = b.sluice.pid!;
    const kv0 = await kvCommitTotals(b.sluice.url, pid);
    const done0 = await tasksDone(b.sluice.url);
    const cpu = cpuMeter(pid), t0 = performance.now();
    const out = await new Deno.Command("/usr/bin/time", {
      args: [
        "-f",
        "WRKCPU %U %S",
        "wrk",
        "-t2",
        "-c64",
        `-d${seconds}s`,
        "-s",
        script,
        `${b.sluice.url}/channels/blog_queuing/invoke`,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const wall = (performance.now() - t0) / 1000;
    const { sluiceCpu, threads } = cpu.read(wall); // the load generator is wrk, measured by /usr/bin/time
    const done = (await tasksDone(b.sluice.url)) - done0;
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    const result = JSON.parse(/BENCH (\{.*\})/.exec(text)?.[1] ?? "null");
    if (!result) throw new Error(`wrk gave no result:\n${text}`);
    const [user, sys] = (/WRKCPU ([\d.]+) ([\d.]+)/.exec(text) ?? []).slice(1).map(Number);
    const rate = Math.round(result.requests / result.seconds);
    const kvCommits = kvCommitFigures(kv0, await kvCommitTotals(b.sluice.url, pid), wall, result.requests);
    await Deno.remove(script);
    return {
      scenario: "Durable ingest, HTTP invoke, 64 connections (wrk)",
      rate,
      unit: "msgs/s",
      tasksDoneRate: Math.round(done / wall),
      ackLatency: { p50: result.p50, p95: result.p95, p99: result.p99 },
      rssMiB: rssMiB(pid),
      sluiceCpu,
      threads,
      loadCpu: Math.round((((user ?? 0) + (sys ?? 0)) / wall) * 100),
      ratioToKv: Math.round((rate / kvCeiling) * 100) / 100,
      kvCommits,
      target: "≥ 25,000 msgs/s",
      met: rate >= 25_000,
      notes: `${result.errors} non-2xx or socket errors; tasks processed meanwhile in the same process`,
    };
  } finally {
    await b.close();
  }
}

function wrkScript(tokens: string[]): string {
  return `tokens = { ${tokens.map((t) => `"${t}"`).join(", ")} }
local n = 0
request = function()
  n = n + 1
  return wrk.format("POST", nil, { ["Authorization"] = "Bearer " .. tokens[(n % #tokens) + 1],
    ["Content-Type"] = "application/json" },
    '{"method":"blog/queues/processor","params":{"data":"21.5,1.25,45.5017:-73.5673,2026-11-25T10:00:00Z"}}')
end
done = function(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.status + summary.errors.timeout
  io.write(string.format('BENCH {"requests": %d, "seconds": %f, "errors": %d, "p50": %.1f, "p95": %.1f, "p99": %.1f}\\n',
    summary.requests - errors, summary.duration / 1e6, errors,
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000))
end
`;
}
