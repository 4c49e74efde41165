import assert from "node:assert/strict";
import { amqpProtocol } from "./amqp_protocol.ts";
import type { CrashOptions, CrashReport } from "./crash_run.ts";
import { httpProtocol } from "./http_protocol.ts";
import { mqttProtocol } from "./mqtt_protocol.ts";

/** What the suite's crash tests share: devices on HTTP, MQTT and AMQP, paced so the interruptions find them sending. */
export function overEveryProtocol(): Pick<CrashOptions, "protocols" | "spacingMs" | "timeoutMs" | "log"> {
  return {
    protocols: [httpProtocol, mqttProtocol(), amqpProtocol({ spacingMs: 40 })],
    spacingMs: 40,
    timeoutMs: 60_000,
    log: () => {},
  };
}

/** Every acknowledged message became exactly one task and one reading, in order, and nothing is left over. */
export function assertExactlyOnce(report: CrashReport, messages: number): void {
  assert.equal(report.acked, messages);
  assert.equal(report.lost, 0, "lost");
  assert.equal(report.duplicated, 0, "duplicated");
  assert.equal(report.outOfOrder, 0, "out of order");
  assert.equal(report.processed, messages);
  assert.equal(report.tasks, messages, "one task per acknowledged message");
  assert.equal(report.stuck, 0, "no stream left with work or a retry");
}
