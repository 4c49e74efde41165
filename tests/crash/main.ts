/**
 * `deno task test:crash`: the long crash test, 20 devices split over HTTP, MQTT (embedded broker,
 * QoS 1) and AMQP (this machine's RabbitMQ). Flags: --devices 20 --per-device 300 --kills 10
 * --protocols http,mqtt,amqp. Prints its figures and exits 1 on any loss, duplicate, reorder or
 * stuck stream.
 */
import { parseArgs } from "node:util";
import { amqpProtocol } from "./amqp_protocol.ts";
import { formatReport, type Protocol, runCrashTest } from "./crash_run.ts";
import { httpProtocol } from "./http_protocol.ts";
import { mqttProtocol } from "./mqtt_protocol.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    devices: { type: "string", default: "20" },
    "per-device": { type: "string", default: "300" },
    kills: { type: "string", default: "10" },
    protocols: { type: "string", default: "http,mqtt,amqp" },
  },
});
const available: Record<string, () => Protocol> = {
  http: () => httpProtocol,
  mqtt: () => mqttProtocol(),
  amqp: () => amqpProtocol({ spacingMs: 40 }),
};
const protocols = values.protocols.split(",").map((name) => {
  const make = available[name.trim()];
  if (!make) throw new Error(`Unknown protocol "${name}" (known: ${Object.keys(available).join(", ")})`);
  return make();
});
const devices = Number(values.devices), perDevice = Number(values["per-device"]);
const report = await runCrashTest({
  devices,
  perDevice,
  minKills: Number(values.kills),
  killAfterMs: [500, 2000],
  protocols,
  timeoutMs: 300_000,
  log: (line) => console.log(line),
});
console.log(formatReport(report));
const ok = report.stopCode === 0 && report.lost === 0 && report.duplicated === 0 && report.outOfOrder === 0 &&
  report.stuck === 0 &&
  report.processed === devices * perDevice && report.tasks === devices * perDevice &&
  report.kills >= Number(values.kills);
console.log(ok ? "crash test passed" : "crash test FAILED");
Deno.exit(ok ? 0 : 1);
