import assert from "node:assert/strict";
import { integration } from "../helpers/sluice.ts";
import { amqpProtocol } from "./amqp_protocol.ts";
import { formatReport, runCrashTest } from "./crash_run.ts";
import { httpProtocol } from "./http_protocol.ts";
import { mqttProtocol } from "./mqtt_protocol.ts";

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
      protocols: [httpProtocol, mqttProtocol(), amqpProtocol({ spacingMs: 40 })],
      spacingMs: 40,
      timeoutMs: 60_000,
      log: () => {},
    });
    console.log(`graceful stops: ${JSON.stringify(report.stops)}; ${formatReport(report)}`);
    assert.ok(report.stops.length >= 3, `only ${report.stops.length} stops`);
    for (const stop of report.stops) {
      assert.equal(stop.code, 0, "exit code of a graceful stop");
      assert.ok(stop.ms < 5000, `stopped in ${stop.ms} ms`);
    }
    assert.equal(report.acked, devices * perDevice);
    assert.equal(report.lost, 0, "lost");
    assert.equal(report.duplicated, 0, "duplicated");
    assert.equal(report.outOfOrder, 0, "out of order");
    assert.equal(report.processed, devices * perDevice);
    assert.equal(report.tasks, devices * perDevice, "one task per acknowledged message");
    assert.equal(report.stuck, 0, "no stream left with work or a retry");
  },
);
