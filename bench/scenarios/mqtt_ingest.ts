import { mqttTransport } from "../../simulators/mqtt.ts";
import { runSim } from "../../simulators/runner.ts";
import { cpuMeter, kvCommitFigures, kvCommitTotals, rssMiB } from "../measure.ts";
import type { ScenarioResult } from "../result.ts";
import { ADMIN, benchSluice, tasksDone } from "../sluice.ts";

/** Durable ingest over MQTT QoS 1: 100 device connections (sim:mqtt's fleet), PUBACK after commit. */
export async function mqttIngest(weatherUrl: string, seconds: number, kvCeiling: number): Promise<ScenarioResult> {
  const b = await benchSluice(weatherUrl);
  try {
    const pid = b.sluice.pid!;
    const url = `mqtt://127.0.0.1:${b.mqttPort}`;
    const kv0 = await kvCommitTotals(b.sluice.url, pid);
    const done0 = await tasksDone(b.sluice.url);
    const cpu = cpuMeter(pid);
    const report = await runSim(
      {
        devices: 100,
        rate: 60_000,
        duration: seconds,
        url,
        adminUrl: b.sluice.url,
        adminToken: ADMIN,
        prefix: "mqtt",
        seed: 1,
        inflight: 16,
      },
      mqttTransport(url),
      { onStart: cpu.start },
    );
    const wall = (performance.now() - report.startedAt) / 1000;
    const done = (await tasksDone(b.sluice.url)) - done0;
    const kvCommits = kvCommitFigures(kv0, await kvCommitTotals(b.sluice.url, pid), wall, report.acked);
    return {
      scenario: "Durable ingest, MQTT QoS 1, 100 connections (sim:mqtt)",
      rate: report.rate,
      unit: "msgs/s",
      tasksDoneRate: Math.round(done / wall),
      ackLatency: report.latency,
      rssMiB: rssMiB(pid),
      ...cpu.read(wall),
      ratioToKv: Math.round((report.rate / kvCeiling) * 100) / 100,
      kvCommits,
      target: "≥ 25,000 msgs/s",
      met: report.rate >= 25_000,
      notes: `${report.errors} errors`,
    };
  } finally {
    await b.close();
  }
}
