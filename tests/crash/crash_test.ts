import assert from "node:assert/strict";
import { integration } from "../helpers/sluice.ts";
import { amqpProtocol } from "./amqp_protocol.ts";
import { formatReport, runCrashTest } from "./crash_run.ts";
import { httpProtocol } from "./http_protocol.ts";
import { mqttProtocol } from "./mqtt_protocol.ts";

integration(
  "kill -9 at random moments loses, repeats and reorders no acknowledged HTTP, MQTT or AMQP message (short form)",
  async () => {
    const devices = 20, perDevice = 50;
    const report = await runCrashTest({
      devices,
      perDevice,
      minKills: 5,
      killAfterMs: [100, 1000],
      protocols: [httpProtocol, mqttProtocol(), amqpProtocol({ spacingMs: 40 })],
      spacingMs: 40,
      timeoutMs: 60_000,
      log: () => {},
    });
    console.log(`crash test: ${formatReport(report)}`);
    assert.ok(report.kills >= 5, `only ${report.kills} kills`);
    assert.deepEqual(Object.values(report.byProtocol).map((p) => p.devices), [7, 7, 6], "devices on every protocol");
    assert.equal(report.acked, devices * perDevice);
    assert.ok(report.sent > report.acked, "some kills hit messages in flight (they were resent)");
    assert.equal(report.lost, 0, "lost");
    assert.equal(report.duplicated, 0, "duplicated");
    assert.equal(report.outOfOrder, 0, "out of order");
    assert.equal(report.processed, devices * perDevice);
    assert.equal(report.tasks, devices * perDevice, "one task per acknowledged message");
    assert.equal(report.stuck, 0, "no stream left with work or a retry");
    assert.equal(report.stopCode, 0, "the final SIGTERM stop was clean");
  },
);
