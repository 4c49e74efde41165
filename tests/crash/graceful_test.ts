import assert from "node:assert/strict";
import { integration } from "../helpers/sluice.ts";
import { formatReport, runCrashTest } from "./crash_run.ts";
import { assertExactlyOnce, overEveryProtocol } from "./suite.ts";

integration(
  "SIGTERM while devices send over HTTP, MQTT and AMQP: exit 0 within 5 s, and after the restart every acknowledged message is processed exactly once",
  async () => {
    const devices = 20, perDevice = 30;
    const report = await runCrashTest({
      devices,
      perDevice,
      minKills: 3,
      killAfterMs: [300, 800],
      signal: "SIGTERM",
      ...overEveryProtocol(),
    });
    console.log(`graceful stops: ${JSON.stringify(report.stops)}; ${formatReport(report)}`);
    assert.ok(report.stops.length >= 3, `only ${report.stops.length} stops`);
    for (const stop of report.stops) {
      assert.equal(stop.code, 0, "exit code of a graceful stop");
      assert.ok(stop.ms < 5000, `stopped in ${stop.ms} ms`);
    }
    assertExactlyOnce(report, devices * perDevice);
  },
);
