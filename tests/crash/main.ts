/**
 * `deno task test:crash`: the long crash test, 20 devices split over HTTP, MQTT (embedded broker,
 * QoS 1) and AMQP (this machine's RabbitMQ). Flags: --devices 20 --per-device 300 --kills 10
 * --protocols http,mqtt,amqp. Prints its figures and exits 1 on any loss, duplicate, reorder or
 * stuck stream.
 */
import { amqpProtocol } from "./amqp_protocol.ts";
import { crashOptions, type ProtocolName, USAGE } from "./cli.ts";
import { formatReport, type Protocol, runCrashTest } from "./crash_run.ts";
import { httpProtocol } from "./http_protocol.ts";
import { mqttProtocol } from "./mqtt_protocol.ts";

let options;
try {
  options = crashOptions(Deno.args);
} catch (err) {
  console.error(`test:crash: ${err instanceof Error ? err.message : err}\n${USAGE}`);
  Deno.exit(2);
}
if (options === "help") {
  console.log(USAGE);
  Deno.exit(0);
}
const available: Record<ProtocolName, () => Protocol> = {
  http: () => httpProtocol,
  mqtt: () => mqttProtocol(),
  amqp: () => amqpProtocol({ spacingMs: 40 }),
};
const protocols = options.protocols.map((name) => available[name]());
const { devices, perDevice } = options;
const report = await runCrashTest({
  devices,
  perDevice,
  minKills: options.kills,
  killAfterMs: [500, 2000],
  protocols,
  timeoutMs: 300_000,
  log: (line) => console.log(line),
});
console.log(formatReport(report));
const ok = report.stopCode === 0 && report.lost === 0 && report.duplicated === 0 && report.outOfOrder === 0 &&
  report.stuck === 0 &&
  report.processed === devices * perDevice && report.tasks === devices * perDevice &&
  report.kills >= options.kills;
console.log(ok ? "crash test passed" : "crash test FAILED");
Deno.exit(ok ? 0 : 1);
