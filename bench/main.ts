/**
 * `deno task bench`: starts Sluice (KV on disk, RATE_LIMIT=off, a local fake weather API) once per
 * scenario and measures it. Prints a table and writes `bench/results.json`.
 *
 *   deno task bench            # the full suite (a few minutes)
 *   deno task bench --quick    # shorter runs
 *   deno task bench --only http,mqtt
 *   deno task bench --only e2e --latency-rate 1800   # send → state at a chosen rate, not half the measured one
 *
 * Load generators (wrk, the simulators) run on the same 2 cores: their CPU share is reported.
 */
import { parseArgs } from "node:util";
import type { ScenarioResult } from "./result.ts";
import { activation } from "./scenarios/activation.ts";
import { coldBurst } from "./scenarios/cold_burst.ts";
import { endToEnd } from "./scenarios/end_to_end.ts";
import { fanout } from "./scenarios/fanout.ts";
import { httpIngest } from "./scenarios/http_ingest.ts";
import { kvCeiling, kvPatternCeiling } from "./scenarios/kv_ceiling.ts";
import { memory } from "./scenarios/memory.ts";
import { mqttIngest } from "./scenarios/mqtt_ingest.ts";
import { fakeWeather } from "./sluice.ts";

const USAGE = `deno task bench [--quick] [--only http,mqtt,e2e,cold,fanout,activation,memory] [--latency-rate N]
  Starts a Sluice per scenario (KV on disk, RATE_LIMIT=off), prints a table and writes bench/results.json.
  --quick         shorter runs (about a minute in all)
  --only          some scenarios (the KV ceiling is always measured)
  --latency-rate  messages/s of the send → state run (default: half the end-to-end rate just measured)
  The HTTP scenario needs wrk and /usr/bin/time (apt-get install -y wrk time).`;

let values;
try {
  ({ values } = parseArgs({
    args: Deno.args,
    options: {
      quick: { type: "boolean", default: false },
      only: { type: "string" },
      "latency-rate": { type: "string" },
      help: { type: "boolean", short: "h", default: false },
    },
  }));
} catch (err) {
  console.error(`${err instanceof Error ? err.message : String(err)}\n\n${USAGE}`);
  Deno.exit(2);
}
if (values.help) {
  console.log(USAGE);
  Deno.exit(0);
}
const latencyRate = values["latency-rate"] === undefined ? undefined : Number(values["latency-rate"]);
if (latencyRate !== undefined && !(Number.isInteger(latencyRate) && latencyRate > 0)) {
  console.error(`--latency-rate must be a whole number of messages a second, not "${values["latency-rate"]}"`);
  Deno.exit(2);
}
const quick = values.quick!;
const SCENARIOS = ["http", "mqtt", "e2e", "cold", "fanout", "activation", "memory"];
const only = values.only?.split(",").map((s) => s.trim());
const unknown = only?.filter((s) => !SCENARIOS.includes(s)) ?? [];
if (unknown.length > 0) {
  console.error(`--only takes some of ${SCENARIOS.join(",")}; unknown: ${unknown.join(",")}`);
  Deno.exit(2);
}
const wanted = (name: string) => !only || only.includes(name);
if (wanted("http")) {
  for (const tool of ["wrk", "/usr/bin/time"]) {
    if (!(await runs(tool))) {
      console.error(`The HTTP scenario needs ${tool}: apt-get install -y wrk time (or leave http out with --only)`);
      Deno.exit(2);
    }
  }
}
const weather = fakeWeather();
const results: ScenarioResult[] = [];
const log = (r: ScenarioResult) => (results.push(r), console.error(`  ${r.scenario}: ${summary(r)}`));

try {
  const ceiling = await kvCeiling(quick ? 2 : 4);
  log(ceiling);
  log(await kvPatternCeiling(quick ? 2 : 3, 100, false));
  log(await kvPatternCeiling(quick ? 2 : 3, 100, true));
  if (wanted("http")) log(await httpIngest(weather.url, quick ? 5 : 15, ceiling.setsPerSec));
  if (wanted("mqtt")) log(await mqttIngest(weather.url, quick ? 5 : 15, ceiling.setsPerSec));
  if (wanted("e2e")) {
    for (const r of await endToEnd(weather.url, quick ? 10_000 : 40_000, quick ? 5 : 15, latencyRate)) {
      log(r);
    }
  }
  if (wanted("cold")) { for (const r of await coldBurst(weather.url, quick ? 5000 : 10_000, 5000)) log(r); }
  if (wanted("fanout")) log(await fanout(weather.url, quick ? 300 : 1000));
  if (wanted("activation")) { for (const r of await activation()) log(r); }
  if (wanted("memory")) {
    log(await memory(weather.url, quick ? 2000 : 10_000));
    log(await memory(weather.url, quick ? 2000 : 10_000, "--optimize-for-size"));
  }
} finally {
  await weather.close();
}

const machine = {
  date: new Date().toISOString(),
  deno: Deno.version.deno,
  cpus: navigator.hardwareConcurrency,
  os: `${Deno.build.os} ${Deno.build.arch}`,
  quick,
};
await Deno.writeTextFile(
  new URL("./results.json", import.meta.url),
  JSON.stringify({ machine, results }, null, 2) + "\n",
);
console.log(table(results));
console.log(`\n${machine.cpus} CPUs, Deno ${machine.deno}, ${machine.date}. Written to bench/results.json.`);

/** Whether a program can be started (spawning one that is missing throws). */
async function runs(tool: string): Promise<boolean> {
  try {
    await new Deno.Command(tool, { args: ["--version"], stdout: "null", stderr: "null" }).output();
    return true;
  } catch {
    return false;
  }
}

function rate(r: ScenarioResult): string {
  if (r.rate === undefined) return "";
  const done = r.tasksDoneRate === undefined ? "" : ` (${r.tasksDoneRate.toLocaleString("en")} tasks done/s)`;
  return `${r.rate.toLocaleString("en")} ${r.unit}${done}`;
}

function summary(r: ScenarioResult): string {
  return [
    rate(r),
    r.ackLatency ? `ack p99 ${r.ackLatency.p99} ms` : "",
    r.stateLatency ? `state p99 ${r.stateLatency.p99} ms` : "",
    r.rssMiB !== undefined ? `RSS ${r.rssMiB} MiB` : "",
    r.notes ?? "",
  ].filter(Boolean).join(", ");
}

function table(rows: ScenarioResult[]): string {
  const lat = (l?: { p50: number; p95: number; p99: number }) => l ? `${l.p50} / ${l.p95} / ${l.p99}` : "";
  const head = [
    "scenario",
    "rate",
    "send→ack p50/p95/p99 ms",
    "send→state (or delivery) ms",
    "RSS MiB",
    "CPU Sluice / load %",
    "Sluice threads: JS main / KV / scripts / V8 %",
    "× KV",
    "KV busy % / per msg: mutations, disk KiB, writes",
    "target",
    "met",
  ];
  const body = rows.map((r) => [
    r.scenario,
    rate(r),
    lat(r.ackLatency),
    lat(r.stateLatency ?? r.deliveryLatency),
    r.rssMiB !== undefined ? String(r.rssMiB) : "",
    r.sluiceCpu !== undefined ? `${r.sluiceCpu} / ${r.loadCpu ?? "?"}` : "",
    r.threads ? `${r.threads.main} / ${r.threads.kv} / ${r.threads.scripts} / ${r.threads.v8}` : "",
    r.ratioToKv !== undefined ? String(r.ratioToKv) : "",
    r.kvCommits
      ? `${r.kvCommits.busyPct} / ${r.kvCommits.mutationsPerMsg}, ${r.kvCommits.diskKiBPerMsg}, ${r.kvCommits.writesPerMsg}`
      : "",
    r.target ?? "",
    r.met === undefined ? "" : r.met ? "yes" : "no",
  ]);
  const lines = [head, head.map(() => "---"), ...body].map((cols) => `| ${cols.join(" | ")} |`);
  return lines.join("\n");
}
