import assert from "node:assert/strict";
import { integration } from "../helpers/sluice.ts";
import { formatReport, runCrashTest } from "./crash_run.ts";
import { assertExactlyOnce, overEveryProtocol } from "./suite.ts";

integration(
  "kill -9 at random moments loses, repeats and reorders no acknowledged HTTP, MQTT or AMQP message (short form)",
  async () => {
    const devices = 20, perDevice = 50;
    const report = await runCrashTest({
      devices,
      perDevice,
      minKills: 5,
      killAfterMs: [100, 1000],
      ...overEveryProtocol(),
    });
    console.log(`crash test: ${formatReport(report)}`);
    assert.ok(report.kills >= 5, `only ${report.kills} kills`);
    assert.deepEqual(Object.values(report.byProtocol).map((p) => p.devices), [7, 7, 6], "devices on every protocol");
    assert.ok(report.sent > report.acked, "some kills hit messages in flight (they were resent)");
    assertExactlyOnce(report, devices * perDevice);
    assert.equal(report.stopCode, 0, "the final SIGTERM stop was clean");
  },
);
